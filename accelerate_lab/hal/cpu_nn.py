"""The cpu device's compiled float32 nn kernels (``csrc/nn.c``): gelu, add, layer norm, softmax rows,
attention, matrix products, and a stack of transformer encoder layers in one call.

Each function returns ``None`` (``attention``: False) where it does not apply (no compiled library:
see :func:`~accelerate_lab.hal.cpu_native.native_status`; another dtype or layout), and the caller
then runs its numpy kernel. Inputs that are not contiguous are copied first; results are new arrays
(softmax and attention write into ``out`` where given). Each kernel uses as many threads as numpy's
BLAS may (:func:`~accelerate_lab.hal.cpu_blas.blas_threads`), for large enough work.

>>> import numpy as np
>>> out = softmax(np.zeros((2, 4), np.float32), 1.0)
>>> out is None or out.tolist() == [[0.25] * 4] * 2
True
"""

# numpy's stubs type many array expressions as Any
# mypy: disable-error-code="no-any-return"

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np

from accelerate_lab.hal import cpu_blas, cpu_buffers, cpu_native
from accelerate_lab.hal.cpu_blas import blas_threads
from accelerate_lab.hal.kernels import ENCODER_LAYER_WEIGHTS

__all__ = ["add", "amx", "attention", "encoder_layer", "gelu", "layer_norm", "library", "matmul", "softmax"]

Array = np.ndarray
_F32 = np.dtype(np.float32)
_P, _I, _D, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_float


@functools.cache
def library() -> ctypes.CDLL | None:
    """``csrc/nn.c`` compiled, its functions typed; None where native kernels are off."""
    lib = cpu_native.load("nn")
    if lib is None:
        return None
    lib.al_gelu_f32.argtypes = [_P, _P, _I, _P, _P, _D, _I]
    lib.al_add_f32.argtypes = [_P, _P, _P, _I, _I, _I, _I]
    lib.al_layer_norm_f32.argtypes = [_P, _P, _P, _P, _I, _I, _D, _I]
    lib.al_softmax_f32.argtypes = [_P, _P, _I, _I, _F, _P, _P, _I, _I, _I, _I]
    lib.al_attention_f32.argtypes = [_P, _P, _P, _P, _P, _P, _P, _I, _I, _I, _I, _I, _I, _F, _I]
    # sgemm, sgemv, ilp64; a and b (address, transposed, ld); c, m, n, k; bias, residual and its ld,
    # gelu's fit (numerator, denominator, limit); threads
    lib.al_matmul_f32.argtypes = [_P, _P, _I, _P, _I, _I, _P, _I, _I, _P, _I, _I, _I]
    lib.al_matmul_f32.argtypes += [_P, _P, _I, _P, _P, _D, _I]
    kernels = (lib.al_gelu_f32, lib.al_add_f32, lib.al_layer_norm_f32, lib.al_softmax_f32, lib.al_matmul_f32)
    for function in kernels:
        function.restype = None
    lib.al_attention_f32.restype = ctypes.c_int
    lib.al_encoder_layers_f32.argtypes, lib.al_encoder_layers_f32.restype = [_P, _I, _I], ctypes.c_int
    if hasattr(lib, "al_amx"):  # built for x86-64
        lib.al_amx.argtypes, lib.al_amx.restype = [_I], ctypes.c_int
        if os.environ.get("ACCELERATE_LAB_AMX", "1") == "0":
            lib.al_amx(0)
    return lib


def amx(enabled: bool | None = None) -> bool:
    """Whether float32 matrix products of 256 rows and more run on AMX tile units (``csrc/amx.h``:
    each float split into three bfloat16 parts, six tile products, as accurate as float32 FMA);
    ``enabled`` turns that on or off for the process first (``ACCELERATE_LAB_AMX=0`` starts it off).
    False where the CPU has no AMX-BF16, Linux refuses its tile state, or kernels are not compiled.

    >>> isinstance(amx(), bool)
    True
    """
    lib = library()
    if lib is None or not hasattr(lib, "al_amx"):
        return False
    return bool(lib.al_amx(-1 if enabled is None else int(enabled)))


def _address(a: Array | None) -> int | None:
    return None if a is None else a.ctypes.data


def gelu(x: Array, numerator: Array, denominator: Array, limit: float) -> Array | None:
    """Exact gelu of float32 ``x`` by the odd rational fit ``t * numerator(t^2) / denominator(t^2)``
    of ``erf(t) / 2`` (float64 coefficients, 7 and 5, highest power first) on ``t`` clamped to
    ``[-limit, limit]``, evaluated in float64."""
    lib = library()
    if lib is None or x.dtype != _F32:
        return None
    out = cpu_buffers.empty(x.shape, _F32)
    x = np.ascontiguousarray(x)  # (a 0-d x comes back 1-d: out keeps its shape)
    lib.al_gelu_f32(
        x.ctypes.data,
        out.ctypes.data,
        x.size,
        numerator.ctypes.data,
        denominator.ctypes.data,
        limit,
        blas_threads(),
    )
    return out


# below this many elements numpy's add is as fast (a ctypes call costs microseconds)
_ADD_MIN_SIZE = 1 << 14


def add(a: Array, b: Array) -> Array | None:
    """``a + b`` of float32 arrays, ``a`` contiguous and ``b`` of its trailing shape (a bias, positions
    over a batch, or all of it), into a new array; bit for bit numpy's sum."""
    lib = library()
    if (
        lib is None
        or a.dtype != _F32
        or b.dtype != _F32
        or a.size < _ADD_MIN_SIZE
        or not a.flags.c_contiguous
        or not b.flags.c_contiguous
        or not 1 <= b.ndim <= a.ndim
        or b.shape != a.shape[a.ndim - b.ndim :]
    ):
        return None
    out = cpu_buffers.empty(a.shape, _F32)
    cols = a.shape[-1]
    lib.al_add_f32(
        a.ctypes.data,
        b.ctypes.data,
        out.ctypes.data,
        a.size // cols,
        cols,
        b.size // cols,
        blas_threads(),
    )
    return out


# products below this many multiply-adds: numpy's matmul. OpenBLAS runs them on one thread anyway (it
# threads from 4 * 65536, GEMM_MULTITHREAD_THRESHOLD's default), so its workers never wake to busy-wait
# against the kernels' threads; larger ones too small to split run single-threaded here
_MATMUL_MIN_WORK = 1 << 18


def _operand(a: Array) -> tuple[int, int] | None:
    """(transposed, leading dimension) of a float32 matrix as cblas takes it: rows of contiguous
    elements, or columns of them (the transpose of such a matrix); None for other layouts."""
    rows, cols = a.strides
    if a.flags.c_contiguous or (cols == 4 and rows % 4 == 0 and rows >= 4 * a.shape[1]):
        return 0, max(1, a.shape[1], rows // 4)
    if a.flags.f_contiguous or (rows == 4 and cols % 4 == 0 and cols >= 4 * a.shape[0]):
        return 1, max(1, a.shape[0], cols // 4)
    return None


def matmul(
    a: Array,
    b: Array,
    bias: Array | None = None,
    residual: Array | None = None,
    gelu: tuple[Array, Array, float] | None = None,
) -> Array | None:
    """``gelu(a @ b + bias) + residual`` of float32 matrices (each of ``bias``, a vector along the
    columns, ``residual``, of the product's shape, and ``gelu``, the fit :func:`gelu` takes, may be
    None), split over :func:`blas_threads` threads (by rows, or by columns below 512 rows), each part
    one single-threaded sgemm (sgemv for a single row) of numpy's OpenBLAS (see
    :mod:`~accelerate_lab.hal.cpu_blas`), or below 512 rows of row-major operands with AVX-512 the
    compiled 8 x 48 tiles that copy B a panel at a time (``csrc/nn.c``), adding the product to its
    part of the output already holding bias and residual; gelu runs on each part while it is in cache.
    None for other dtypes, shapes and layouts, and for a plain product where one thread is allowed or
    the product is small (numpy's matmul is as fast)."""
    lib, blas = library(), cpu_blas.routines()
    if (
        lib is None
        or blas is None
        or a.dtype != _F32
        or b.dtype != _F32
        or a.ndim != 2
        or b.ndim != 2
        or a.shape[1] != b.shape[0]
    ):
        return None
    m, n, k = a.shape[0], b.shape[1], a.shape[1]
    threads = blas_threads()
    fused = bias is not None or residual is not None or gelu is not None
    if not fused and (threads == 1 or m * n * k < _MATMUL_MIN_WORK):
        return None
    if (residual is not None and (residual.dtype != _F32 or residual.shape != (m, n))) or (
        bias is not None and (bias.dtype != _F32 or bias.shape != (n,))
    ):
        return None
    layout_a, layout_b = _operand(a), _operand(b)
    layout_r = (0, 0) if residual is None else _operand(residual)
    if layout_a is None or layout_b is None or layout_r is None or layout_r[0]:
        return None
    if m * n * k < _MATMUL_MIN_WORK:
        threads = 1
    bias = None if bias is None else np.ascontiguousarray(bias)
    out = cpu_buffers.empty((m, n), _F32)
    with cpu_blas.single_threaded():
        lib.al_matmul_f32(
            blas.sgemm,
            blas.sgemv,
            int(blas.ilp64),
            a.ctypes.data,
            *layout_a,
            b.ctypes.data,
            *layout_b,
            out.ctypes.data,
            m,
            n,
            k,
            _address(bias),
            _address(residual),
            layout_r[1],
            *((None, None, 0.0) if gelu is None else (gelu[0].ctypes.data, gelu[1].ctypes.data, gelu[2])),
            threads,
        )
    return out


def _vector(a: Array | None, size: int) -> Array | None:
    """``a`` as a contiguous float32 vector of ``size`` (None stays None)."""
    return None if a is None else np.ascontiguousarray(a, _F32).reshape(size)


def layer_norm(x: Array, weight: Array | None, bias: Array | None, eps: float) -> Array | None:
    """Layer norm over the last axis of float32 ``x``; ``weight`` and ``bias`` vectors along it."""
    lib = library()
    width = x.shape[-1] if x.ndim else 0
    if (
        lib is None
        or x.dtype != _F32
        or not width
        or any(a is not None and a.shape != (width,) for a in (weight, bias))
    ):
        return None
    x = np.ascontiguousarray(x)
    out = cpu_buffers.empty(x.shape, _F32)
    w, b = _vector(weight, width), _vector(bias, width)
    lib.al_layer_norm_f32(
        x.ctypes.data, _address(w), _address(b), out.ctypes.data, x.size // width, width, eps, blas_threads()
    )
    return out


def _mask_rows(
    mask: Array, shape: tuple[int, ...], dtype: np.dtype[np.generic]
) -> tuple[Array, int, int, int]:
    """``mask`` broadcast to ``shape`` as ``(outer, inner, width)`` rows with contiguous last axis, and
    its strides in elements: a view of ``mask`` where one exists, else a copy."""
    width, inner = shape[-1], shape[-2] if len(shape) > 1 else 1
    full = np.broadcast_to(np.asarray(mask, dtype), shape)
    if width > 1 and full.strides[-1] != full.itemsize:
        full = np.ascontiguousarray(full)
    try:
        rows = np.reshape(full, (-1, inner, width), copy=False)
    except ValueError:  # leading axes that no single stride walks
        rows = np.ascontiguousarray(full).reshape(-1, inner, width)
    return rows, inner, rows.strides[0] // rows.itemsize, rows.strides[1] // rows.itemsize


def softmax(
    x: Array,
    factor: float,
    added: Array | None = None,
    hidden: Array | None = None,
    out: Array | None = None,
) -> Array | None:
    """Softmax along the last axis of float32 ``x * factor``, plus the float mask ``added`` or with
    the positions where the bool mask ``hidden`` is set left out (masks broadcastable to ``x``).

    ``out``: a contiguous float32 array of ``x``'s shape to write into instead of a new one; it may be
    ``x`` itself.
    """
    lib = library()
    if (
        lib is None
        or x.dtype != _F32
        or x.ndim == 0
        or x.size == 0
        or (added is not None and hidden is not None)
    ):
        return None
    x = np.ascontiguousarray(x)
    out = cpu_buffers.empty(x.shape, _F32) if out is None else out
    inner, outer_stride, inner_stride = 1, 0, 0
    mask = added if hidden is None else hidden
    if mask is not None:
        mask, inner, outer_stride, inner_stride = _mask_rows(
            mask, x.shape, np.dtype(np.bool_ if hidden is not None else _F32)
        )
    lib.al_softmax_f32(
        x.ctypes.data,
        out.ctypes.data,
        x.size // x.shape[-1],
        x.shape[-1],
        factor,
        None if added is None else _address(mask),
        None if hidden is None else _address(mask),
        inner,
        outer_stride,
        inner_stride,
        blas_threads(),
    )
    return out


def _heads(a: Array) -> tuple[Array, list[int]]:
    """``a`` (..., heads, rows, cols) with a contiguous last axis, as (units, heads, rows, cols) (a view
    where one exists, else a copy), and its (unit, head, row) strides in elements (row 0: one row)."""
    if a.shape[-1] > 1 and a.strides[-1] != a.itemsize:
        a = np.ascontiguousarray(a)
    try:
        merged = np.reshape(a, (-1, *a.shape[-3:]), copy=False)
    except ValueError:  # leading axes that no single stride walks
        merged = np.ascontiguousarray(a).reshape(-1, *a.shape[-3:])
    unit, head, row = (stride // a.itemsize for stride in merged.strides[:3])
    return merged, [unit, head, row if a.shape[-2] > 1 else 0]


def attention(
    q: Array,
    k: Array,
    v: Array,
    added: Array | None,
    hidden: Array | None,
    factor: float,
    out: Array,
) -> bool:
    """``out`` <- ``softmax(q k^T * factor + mask) v`` for float32 ``(..., heads, L, E)`` operands of
    one batch shape, with the float mask ``added`` or the bool mask ``hidden`` (True: left out) of
    shape ``(..., heads, L or 1, S)``; each query's softmax as :func:`softmax` computes it. ``out``:
    ``(..., heads, L, Ev)`` float32 with a contiguous last axis. False, with nothing done, where it
    does not apply: no library, other dtypes, both masks, no heads axis, an ``out`` whose batch axes
    no view merges, or empty operands."""
    lib = library()
    if (
        lib is None
        or not q.dtype == k.dtype == v.dtype == out.dtype == _F32
        or (added is not None and hidden is not None)
        or q.ndim < 3
        or 0 in (*q.shape, *k.shape[-2:])
        or out.strides[-1] != out.itemsize
    ):
        return False
    try:
        target = np.reshape(out, (-1, *out.shape[-3:]), copy=False)
    except ValueError:
        return False
    mask = None if added is None else np.asarray(added, _F32)
    mask = mask if hidden is None else np.asarray(hidden, np.bool_)
    operands, layouts = [], []
    for a in (q, k, v) if mask is None else (q, k, v, mask):
        merged, strides = _heads(a)
        operands.append(merged)
        layouts.extend(strides)
    layouts[9:9] = [*(stride // 4 for stride in target.strides[:2]), target.strides[2] // 4]
    layouts.extend([0] * (15 - len(layouts)))
    heads, length, dim = q.shape[-3:]
    status = lib.al_attention_f32(
        operands[0].ctypes.data,
        operands[1].ctypes.data,
        operands[2].ctypes.data,
        target.ctypes.data,
        operands[3].ctypes.data if added is not None else None,
        operands[3].ctypes.data if hidden is not None else None,
        (ctypes.c_int64 * 15)(*layouts),
        target.shape[0] * heads,
        heads,
        length,
        k.shape[-2],
        dim,
        v.shape[-1],
        factor,
        blas_threads(),
    )
    if status:
        raise MemoryError("no memory for the scratch of the attention kernel")
    return True


class _EncoderLayer(ctypes.Structure):
    """``struct encoder_layer`` of ``csrc/nn.c``, field for field."""

    _fields_ = [
        ("sgemm", _P),
        ("sgemv", _P),
        ("ilp64", _I),
        ("gelu_p", _P),
        ("gelu_q", _P),
        ("gelu_limit", _D),
        ("eps", _D),
        *((name, _I) for name in ("batch", "length", "width", "heads", "inner", "pre_norm")),
        *((name, _P) for name in ("x", "hidden", *ENCODER_LAYER_WEIGHTS)),
        *((name, _P) for name in ("qkv", "attended", "mid", "normed", "up", "out")),
    ]


def encoder_layer(
    x: Array,
    hidden: Array | None,
    weights: tuple[Array, ...],
    heads: int,
    eps: float,
    pre_norm: bool,
    gelu: tuple[Array, Array, float],
) -> Array | None:
    """Transformer encoder layers, one after the other, on float32 ``x`` ``(batch, length, width)`` in
    one call (``csrc/nn.c``: the products, attention and layer norms of this module, in the order
    ``EncoderLayer`` runs them; the same bits). ``hidden``: bool ``(batch, length)``, True for the keys
    no query attends to, or None; ``weights``: per layer, the query/key/value, output, up and down
    products' ``(in, out)`` weights and biases and the two norms' weights and biases, in the order of
    ``ENCODER_LAYER_WEIGHTS``, all float32 and of matching shapes (the caller checks); ``gelu``: the fit
    :func:`gelu` takes, for the MLP's activation. None where the compiled kernels or numpy's BLAS are
    missing."""
    lib, blas = library(), cpu_blas.routines()
    if lib is None or blas is None:
        return None
    per_layer = len(ENCODER_LAYER_WEIGHTS)
    (batch, length, width), inner = x.shape, weights[ENCODER_LAYER_WEIGHTS.index("up_weight")].shape[1]
    held = [np.ascontiguousarray(w, _F32) for w in weights]
    rows, count = batch * length, len(held) // per_layer
    scratch = {
        "qkv": cpu_buffers.empty((rows, 3 * width), _F32),
        **{name: cpu_buffers.empty((rows, width), _F32) for name in ("attended", "mid", "normed")},
        "up": cpu_buffers.empty((rows, inner), _F32),
    }
    # each layer's output is the next one's input: two arrays in turn
    outputs = [cpu_buffers.empty((batch, length, width), _F32) for _ in range(min(count, 2))]
    inputs = [np.ascontiguousarray(x), *(outputs[i % 2] for i in range(count - 1))]
    mask = None if hidden is None else np.ascontiguousarray(hidden, np.bool_)
    layers = (_EncoderLayer * count)()
    for i, layer in enumerate(layers):
        ours = held[i * per_layer : (i + 1) * per_layer]
        for name, a in (*zip(ENCODER_LAYER_WEIGHTS, ours, strict=True), *scratch.items()):
            setattr(layer, name, a.ctypes.data)
        layer.x, layer.out = inputs[i].ctypes.data, outputs[i % 2].ctypes.data
        layer.sgemm, layer.sgemv, layer.ilp64 = blas.sgemm, blas.sgemv, int(blas.ilp64)
        layer.gelu_p, layer.gelu_q, layer.gelu_limit = gelu[0].ctypes.data, gelu[1].ctypes.data, gelu[2]
        layer.batch, layer.length, layer.width, layer.heads, layer.inner = batch, length, width, heads, inner
        layer.pre_norm, layer.eps, layer.hidden = int(pre_norm), eps, _address(mask)
    with cpu_blas.single_threaded():
        status = lib.al_encoder_layers_f32(layers, count, blas_threads())
    if status:
        raise MemoryError("no memory for the scratch of the attention kernel")
    return outputs[(count - 1) % 2]
