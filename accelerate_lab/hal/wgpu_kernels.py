"""The non-elementwise kernels of the ``wgpu`` device: matmul, row reductions and normalisations,
embedding, convolution and attention. Each prepares dense (or strided, for matmul) operands, packs
the uniform its shader header documents, and records one dispatch."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelerate_lab.hal import wgpu_shaders
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, span
from accelerate_lab.hal.wgpu_codegen import ElementwiseProgram, Reg, Unsupported, library
from accelerate_lab.hal.wgpu_elementwise import bind_window, collapse
from accelerate_lab.hal.wgpu_runtime import Binding, flat_workgroups, pack_words

if TYPE_CHECKING:
    from accelerate_lab.hal.wgpu_device import WgpuDevice

__all__ = [
    "attention",
    "conv",
    "gather",
    "gguf_lanes",
    "matmul",
    "matmul_aligned_workgroup_bytes",
    "matmul_dispatches",
    "matmul_gguf",
    "matmul_q8",
    "matmul_workgroup_bytes",
    "normalize",
    "reduce_rows",
]

_FLOAT = {"float32": "f32", "float16": "f16"}
_REDUCE_OPS = {"sum": 0, "mean": 1, "max": 2, "min": 3, "var": 4, "argmax": 5}
_NORMALIZE_OPS = {"softmax": 0, "log_softmax": 1, "layer_norm": 2}

matmul_dispatches: Counter[str] = Counter()
"""Matmul dispatches recorded per shader file (which kernel ran), over all devices of the process."""


@functools.cache
def kernel_source(
    name: str, flags: tuple[str, ...], aliases: tuple[tuple[str, str], ...], helpers: tuple[str, ...]
) -> str:
    """A shader family prepared for the adapter, with the helper files it needs prepended."""
    parts = [wgpu_shaders.prepare(wgpu_shaders.load(name), flags, dict(aliases))]
    for helper in helpers:
        parts.append(library(flags) if helper == "elementwise_ops.wgsl" else wgpu_shaders.load(helper))
    return wgpu_shaders.compose(*parts)


def float_type(dev: WgpuDevice, dtype: np.dtype[np.generic], kernel: str) -> str:
    """The WGSL storage type of a float tensor; ``Unsupported`` for other dtypes (the cpu runs them)."""
    wgsl = _FLOAT.get(dtype.name)
    if wgsl is None or (wgsl == "f16" and not dev.f16):
        raise Unsupported(f"{kernel} on {dtype.name} has no WGSL kernel on this adapter")
    return wgsl


def _flags(wgsl: str) -> tuple[str, ...]:
    return ("F16",) if wgsl == "f16" else ()


def _bind(dev: WgpuDevice, buf: WgpuBuffer) -> tuple[Binding, int]:
    """Bind a view's span; returns the binding and the view's offset inside it (in elements)."""
    assert buf.storage is not None
    lo, hi = span(buf.shape, buf.strides, buf.offset)
    binding, first = bind_window(dev.runtime, buf.storage, lo, max(hi, lo), buf.itemsize)
    return binding, buf.offset - first


def _bind0(dev: WgpuDevice, buf: WgpuBuffer) -> Binding:
    """Bind a dense buffer so that its first element is element 0 of the binding (copying if unaligned)."""
    binding, rel = _bind(dev, buf)
    if rel:
        binding, rel = _bind(dev, dev.copy_dense(buf))
    assert rel == 0
    return binding


def _uniform(values: Sequence[int | float]) -> bytes:
    return pack_words(values, -(-len(values) // 4) * 4)


def _batch_axes(
    shape: Sequence[int], a: Sequence[int], b: Sequence[int]
) -> tuple[list[int], list[list[int]]] | None:
    """Batch axes merged where both operands allow; None if more than two remain."""
    dims, (sa, sb) = collapse(shape, [a, b])
    if len(dims) > 2:
        return None
    while len(dims) < 2:
        dims.insert(0, 1)
        sa.insert(0, 0)
        sb.insert(0, 0)
    return dims, [sa, sb]


def matmul_workgroup_bytes(threads: int, per_thread: int, step: int) -> int:
    """Workgroup memory of matmul.wgsl for a tile config: two K-slices of A and of B, rows padded by 4."""
    return 16 * step * (threads * per_thread + 4)


def _check_tile(dev: WgpuDevice, threads: int, per_thread: int, step: int) -> None:
    """The constraints on the override constants that matmul.wgsl's header states."""
    fits = (
        per_thread in (4, 8)
        and threads % per_thread == 0
        and (threads * threads) % (4 * step) == 0
        and (step * per_thread) % threads == 0
        and step * per_thread <= 8 * threads
    )
    if not fits:
        raise ValueError(f"matmul tile config {(threads, per_thread, step)} breaks matmul.wgsl's constraints")
    limit = dev.runtime.profile.limits.get("max-compute-workgroup-storage-size", 16384)
    if matmul_workgroup_bytes(threads, per_thread, step) > limit:
        raise ValueError(
            f"matmul tile config {(threads, per_thread, step)} needs more workgroup memory than {limit} bytes"
        )


def matmul_aligned_workgroup_bytes(rows: int, cols: int, step: int) -> int:
    """Workgroup memory of matmul_aligned.wgsl for a block tile: two K-slices of A and B, rows padded by 4."""
    return 32 * step * (rows // 4 + cols // 4 + 2)


def _check_aligned_tile(dev: WgpuDevice, rows: int, cols: int, step: int) -> None:
    """The constraints on the block tile and options that matmul_aligned.wgsl's header states."""
    threads = rows * cols // 64
    fits = (
        rows % 8 == 0
        and cols % 8 == 0
        and step % 4 == 0
        and threads <= dev.runtime.profile.limits.get("max-compute-invocations-per-workgroup", 256)
        and all(side * step in (4 * threads, 8 * threads, 16 * threads) for side in (rows, cols))
    )
    options = dev.runtime.matmul_aligned_options
    unroll, group = options.get("UNROLL", 1), options.get("GROUP", 1)
    known = {"UNROLL", "GROUP", "TRUSTED"}
    fits = fits and set(options) <= known and unroll in (1, 4, 8) and step % unroll == 0
    if not fits or group < 1:
        raise ValueError(
            f"aligned matmul tile {(rows, cols, step)} {options} breaks matmul_aligned.wgsl's constraints"
        )
    limit = dev.runtime.profile.limits.get("max-compute-workgroup-storage-size", 16384)
    if matmul_aligned_workgroup_bytes(rows, cols, step) > limit:
        raise ValueError(
            f"aligned matmul tile {(rows, cols, step)} needs more workgroup memory than {limit} bytes"
        )


def _aligned_b(
    dev: WgpuDevice,
    dtypes: tuple[str, str],
    sizes: tuple[int, int, int],
    a_words: Sequence[int],
    b_words: Sequence[int],
) -> bool | None:
    """Whether matmul_aligned.wgsl takes this float32 product (None: no), and if so whether B is walked
    along K (a transposed weight). ``a_words``/``b_words``: offset, row and column strides, batch
    strides of A and B, as in the uniform; every row contiguous and everything in whole vec4s."""
    config = dev.runtime.matmul_aligned_config
    if config is None or dtypes != ("float32", "float32"):
        return None
    rows, cols, step = config
    _check_aligned_tile(dev, rows, cols, step)
    m, n, k = sizes
    if (
        m % rows
        or n % cols
        or k % step
        or a_words[2] != 1
        or any(x % 4 for x in (*a_words[:2], *a_words[3:], b_words[0], *b_words[3:]))
    ):
        return None
    if b_words[2] == 1 and b_words[1] % 4 == 0:
        return False
    if b_words[1] == 1 and b_words[2] % 4 == 0:
        return True
    return None


def _matmul_kernel(
    dev: WgpuDevice, transposed: bool | None
) -> tuple[str, tuple[int, int], dict[str, int | float]]:
    """Shader, block tile (rows, columns) and override constants: matmul_aligned.wgsl, with B walked
    along K or not, or (``transposed`` None) matmul.wgsl."""
    if transposed is None:
        threads, per_thread, step = dev.runtime.matmul_config
        _check_tile(dev, threads, per_thread, step)
        tile = threads * per_thread
        return "matmul.wgsl", (tile, tile), {"TS": threads, "R": per_thread, "BK": step}
    assert dev.runtime.matmul_aligned_config is not None
    rows, cols, step = dev.runtime.matmul_aligned_config
    constants: dict[str, int | float] = {"TX": cols // 8, "TY": rows // 8, "BK": step, "BT": int(transposed)}
    constants.update((k, v) for k, v in dev.runtime.matmul_aligned_options.items() if k != "TRUSTED")
    return "matmul_aligned.wgsl", (rows, cols), constants


def matmul(
    dev: WgpuDevice,
    a: WgpuBuffer,
    b: WgpuBuffer,
    out: WgpuBuffer,
    epilogue: ElementwiseProgram | None,
    result: Reg | None,
) -> None:
    """``out = epilogue(a @ b)``; ``a`` is ``(*batch, M, K)``, ``b`` ``(*batch, K, N)`` (same batch shape)."""
    wgsl = float_type(dev, a.dtype, "matmul")
    batch_shape = a.shape[:-2]
    merged = _batch_axes(batch_shape, a.strides[:-2], b.strides[:-2])
    if merged is None:
        a, b = dev.copy_dense(a), dev.copy_dense(b)
        merged = _batch_axes(batch_shape, a.strides[:-2], b.strides[:-2])
        assert merged is not None
    (outer, inner), (sa, sb) = merged
    b_bind, b_off = _bind(dev, b)
    b_words = [b_off, b.strides[-2], b.strides[-1], sb[0], sb[1]]
    _dispatch_matmul(dev, wgsl, a, sa, (outer, inner), [b_bind], b_words, b.shape[-1], out, epilogue, result)


def matmul_q8(
    dev: WgpuDevice,
    x: WgpuBuffer,
    weight: WgpuBuffer,
    vectors: tuple[WgpuBuffer, WgpuBuffer, WgpuBuffer | None],
    out: WgpuBuffer,
) -> None:
    """``out = x @ W.T + bias`` (the catalogue's ``matmul_q8``) with matmul.wgsl's Q8 flag.

    ``x`` is a ``(M, K)`` view; ``weight`` the dense packed ``(N, ceil(K / 4))`` int32 bytes, which the
    kernel reads as the ``(K, N)`` operand B with byte strides (1 along K, the padded row along N);
    ``vectors`` are ``scale``, ``x_scale`` and ``bias`` (float32).
    """
    wgsl = float_type(dev, x.dtype, "matmul_q8")
    scale, x_scale, bias = vectors
    weight = dev.dense(weight)
    bindings = [_bind0(dev, weight), _bind0(dev, dev.dense(x_scale)), _bind0(dev, dev.dense(scale))]
    bindings.append(_bind0(dev, dev.dense(bias)) if bias is not None else bindings[2])
    b_words = [0, 1, 4 * weight.shape[1], 0, 0]
    _dispatch_matmul(
        dev, wgsl, x, [0, 0], (1, 1), bindings, b_words, weight.shape[0], out, None, None, bias is not None
    )


def gguf_lanes(dev: WgpuDevice) -> int:
    """Threads per output column of quant_gguf.wgsl: 1 on software adapters (barriers are costly), else 32."""
    return 1 if dev.runtime.profile.is_software else 32


def matmul_gguf(dev: WgpuDevice, qtype: str, x: WgpuBuffer, weight: WgpuBuffer, out: WgpuBuffer) -> None:
    """``out = x @ W.T`` with quant_gguf.wgsl: ``x`` a ``(M, K)`` float32 view, ``weight`` the ``(N, words)``
    int32 rows of ``qtype`` blocks (read packed), ``out`` dense ``(M, N)``."""
    (m, k), n = x.shape, weight.shape[0]
    x = dev.dense(x)
    x_bind, x_off = _bind(dev, x)
    groups = -(-m // 4)
    words = [m, n, k, weight.shape[1], x_off, groups, 0, 0]
    source = kernel_source("quant_gguf.wgsl", ("Q8_0",) if qtype == "Q8_0" else (), (), ())
    lanes = gguf_lanes(dev)
    constants = {"WG": dev.workgroup, "LANES": lanes}
    pipeline = dev.runtime.pipeline(source, ("uniform", "read", "read", "write"), constants)
    bindings = [x_bind, _bind0(dev, dev.dense(weight)), _bind0(dev, out)]
    dev.runtime.dispatch(pipeline, bindings, pack_words(words, 8), -(-n // (dev.workgroup // lanes)) * groups)


def _dispatch_matmul(
    dev: WgpuDevice,
    wgsl: str,
    a: WgpuBuffer,
    a_batch: Sequence[int],
    batches: tuple[int, int],
    b_bindings: list[Binding],
    b_words: list[int],
    n: int,
    out: WgpuBuffer,
    epilogue: ElementwiseProgram | None,
    result: Reg | None,
    q8_bias: bool | None = None,
) -> None:
    """One matmul dispatch, of matmul_aligned.wgsl when the operands allow, else of matmul.wgsl: ``a``
    a strided view with merged batch strides ``a_batch``; B's bindings (B alone, or with Q8 the packed
    bytes, scales and bias) and its five uniform words (offset, K, N, outer and inner batch strides)
    prepared by the caller; ``q8_bias`` set (has a bias or not) for Q8."""
    m, k = a.shape[-2:]
    outer, inner = batches
    a_bind, a_off = _bind(dev, a)
    a_words = [a_off, a.strides[-2], a.strides[-1], a_batch[0], a_batch[1]]
    flags = ("F16",) if wgsl == "f16" or (epilogue is not None and epilogue.uses_f16) else ()
    transposed = None
    if q8_bias is None and not flags:
        transposed = _aligned_b(dev, (a.dtype.name, out.dtype.name), (m, n, k), a_words, b_words)
    shader, (rows, cols), constants = _matmul_kernel(dev, transposed)
    tiles_m, tiles_n = -(-m // rows), -(-n // cols)
    c_bind = _bind0(dev, out)
    scalars = epilogue.scalar_words if epilogue else []
    words = [m, n, k, tiles_n, tiles_m, inner, *a_words, 0]
    words += [*scalars, *([0] * (16 - len(scalars)))]
    words += [*b_words, 0, outer * inner, int(bool(q8_bias))]
    bindings = [a_bind, b_bindings[0], c_bind, *b_bindings[1:]]
    for view in epilogue.operands if epilogue else []:
        binding, rel = _bind(dev, view)
        bindings.append(binding)
        words += [rel, view.strides[-1]]
    if q8_bias is not None:
        flags = (*flags, "Q8")
    body = (
        "\n".join([*epilogue.lines, f"    return {result.name};"]) if epilogue and result else "    return x;"
    )
    template = wgpu_shaders.prepare(
        wgpu_shaders.load(shader),
        flags,
        {"IN": wgsl, "OUT": wgsl},
        {"EPILOGUE": body, "BINDINGS": epilogue.bindings(4) if epilogue else ""},
    )
    layout = ("uniform", "read", "read", "write", *(["read"] * (len(bindings) - 3)))
    trusted = transposed is not None and bool(dev.runtime.matmul_aligned_options.get("TRUSTED"))
    pipeline = dev.runtime.pipeline(
        wgpu_shaders.compose(template, library(flags)), layout, constants, trusted=trusted
    )
    matmul_dispatches[shader] += 1
    dev.runtime.dispatch(pipeline, bindings, pack_words(words, 64), tiles_m * tiles_n * outer * inner)


def _rows(
    dev: WgpuDevice,
    x: WgpuBuffer,
    kernel: str,
    entry: str,
    op: int,
    out: WgpuBuffer,
    n: int,
    extra: float,
    weight: WgpuBuffer | None = None,
    bias: WgpuBuffer | None = None,
) -> None:
    wgsl = float_type(dev, x.dtype, kernel)
    out_type = "u32" if kernel == "argmax" else wgsl
    x = dev.dense(x)
    rows = x.size // n if n else out.size
    x_bind, x_off = _bind(dev, x)
    bindings = [x_bind, _bind0(dev, out)]
    words = [rows, n, x_off, 0, 0, int(weight is not None), int(bias is not None), float(extra)]
    if entry == "normalize":
        for i, extra_buf in enumerate((weight, bias)):
            binding, rel = _bind(dev, dev.dense(extra_buf)) if extra_buf is not None else (x_bind, 0)
            bindings.append(binding)
            words[3 + i] = rel
    source = kernel_source(
        "rows.wgsl",
        _flags(wgsl),
        (("IN", wgsl), ("OUT", out_type)),
        ("workgroup_reduce.wgsl", "elementwise_ops.wgsl"),
    )
    layout = ("uniform", "read", "write", *(["read"] * (len(bindings) - 2)))
    pipeline = dev.runtime.pipeline(source, layout, {"WG": dev.workgroup, "OP": op}, entry)
    dev.runtime.dispatch(pipeline, bindings, _uniform(words), rows)


def reduce_rows(
    dev: WgpuDevice, kernel: str, x: WgpuBuffer, axes: tuple[int, ...], out: WgpuBuffer, correction: float
) -> None:
    """Reduce the ``axes`` of ``x`` into the dense ``out`` (kept axes in order)."""
    kept = [d for d in range(len(x.shape)) if d not in axes]
    moved = x.view(
        tuple(x.shape[d] for d in (*kept, *axes)), tuple(x.strides[d] for d in (*kept, *axes)), x.offset
    )
    n = math.prod(x.shape[d] for d in axes)
    _rows(dev, moved, kernel, "reduce", _REDUCE_OPS[kernel], out, n, correction)


def normalize(
    dev: WgpuDevice,
    kernel: str,
    x: WgpuBuffer,
    out: WgpuBuffer,
    eps: float = 0.0,
    weight: WgpuBuffer | None = None,
    bias: WgpuBuffer | None = None,
) -> None:
    """softmax / log_softmax / layer_norm over the last axis of ``x`` into the dense ``out``."""
    _rows(
        dev,
        x,
        kernel,
        "normalize",
        _NORMALIZE_OPS[kernel],
        out,
        x.shape[-1] if x.shape else 1,
        eps,
        weight,
        bias,
    )


def gather(dev: WgpuDevice, entry: str, ids: WgpuBuffer, src: WgpuBuffer, out: WgpuBuffer, rows: int) -> None:
    """``gather``: rows of the table ``src`` picked by ``ids``; ``scatter``: their gradient summed per row."""
    wgsl = float_type(dev, src.dtype, "embedding")
    ids, src = dev.dense(ids), dev.dense(src)
    dim = src.shape[-1] if src.shape else 1
    ids_bind, ids_off = _bind(dev, ids)
    words_per_id = 2 if ids.dtype.itemsize == 8 else 1
    src_bind, src_off = _bind(dev, src)
    words = [
        out.size,
        dim,
        rows,
        ids.size,
        words_per_id,
        int(ids.dtype.kind == "i"),
        ids_off * words_per_id,
        src_off,
    ]
    source = kernel_source("gather.wgsl", _flags(wgsl), (("T", wgsl),), ())
    pipeline = dev.runtime.pipeline(
        source, ("uniform", "read", "read", "write", "write"), {"WG": dev.workgroup}, entry
    )
    error = dev.error_flag()
    bindings = [ids_bind, src_bind, _bind0(dev, out), (error, 0, error.nbytes)]
    dev.runtime.dispatch(pipeline, bindings, _uniform(words), flat_workgroups(out.size, dev.workgroup))


def conv(
    dev: WgpuDevice,
    entry: str,
    in0: WgpuBuffer,
    in1: WgpuBuffer,
    out: WgpuBuffer,
    bias: WgpuBuffer | None,
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    y_shape: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> None:
    """One convolution entry (``forward``, ``backward_input``, ``backward_weight``) on dense operands."""
    wgsl = float_type(dev, out.dtype, "conv")
    two = len(stride) == 2

    def hw(values: Sequence[int], one: int) -> list[int]:
        return list(values) if two else [one, *values]

    n, c, h, w = x_shape[0], x_shape[1], *hw(x_shape[2:], 1)
    o, kh, kw = w_shape[0], *hw(w_shape[2:], 1)
    oh, ow = hw(y_shape[2:], 1)
    (sh, sw), (ph, pw), (dh, dw) = hw(stride, 1), hw(padding, 0), hw(dilation, 1)
    words = [out.size, n, c, h, w, o, oh, ow, kh, kw, groups, int(bias is not None), sh, sw, ph, pw, dh, dw]
    operands = [dev.dense(in0), dev.dense(in1), out]
    bindings = [_bind0(dev, t) for t in operands]
    bindings.append(_bind0(dev, dev.dense(bias)) if bias is not None else bindings[0])
    source = kernel_source("conv.wgsl", _flags(wgsl), (("T", wgsl),), ())
    layout = ("uniform", "read", "read", "write", "read")
    pipeline = dev.runtime.pipeline(source, layout, {"WG": dev.workgroup}, entry)
    dev.runtime.dispatch(pipeline, bindings, _uniform(words), flat_workgroups(out.size, dev.workgroup))


def attention(
    dev: WgpuDevice,
    q: WgpuBuffer,
    k: WgpuBuffer,
    v: WgpuBuffer,
    mask: WgpuBuffer | None,
    out: WgpuBuffer,
    is_causal: bool,
    scale: float,
) -> None:
    """Fused attention on dense ``(B, L, E)``, ``(B, S, E)``, ``(B, S, Ev)``, f32 mask ``(B, L, S)``."""
    wgsl = float_type(dev, q.dtype, "sdpa")
    batches, length, e = q.shape
    source_len, ev = k.shape[1], v.shape[2]
    if max(e, ev) > 512:
        raise Unsupported(f"attention head sizes above 512 (got {e}, {ev})")
    operands = [dev.dense(q), dev.dense(k), dev.dense(v)]
    bindings = [_bind0(dev, t) for t in operands]
    bindings.append(_bind0(dev, mask) if mask is not None else bindings[0])
    bindings.append(_bind0(dev, out))
    words = [batches * length, length, source_len, e, ev, int(is_causal), int(mask is not None), float(scale)]
    source = kernel_source(
        "attention.wgsl", _flags(wgsl), (("T", wgsl),), ("workgroup_reduce.wgsl", "elementwise_ops.wgsl")
    )
    layout = ("uniform", "read", "read", "read", "read", "write")
    pipeline = dev.runtime.pipeline(source, layout, {"WG": dev.workgroup})
    dev.runtime.dispatch(pipeline, bindings, _uniform(words), batches * length)
