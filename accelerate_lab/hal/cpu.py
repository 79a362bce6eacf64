"""The cpu device: every kernel of the catalogue on numpy arrays (buffers are ``numpy.ndarray``)."""

# numpy's stubs type many array expressions as Any and reject tuple[object, ...] as an index
# mypy: disable-error-code="no-any-return, index"

from __future__ import annotations

import functools
import math
import os
import platform
import resource
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelerate_lab.errors import ShapeError, UnsupportedKernelError
from accelerate_lab.hal import cpu_blas, cpu_buffers, cpu_nn, shapes
from accelerate_lab.hal.cpu_gguf import matmul_gguf
from accelerate_lab.hal.device import Buffer, DeviceInfo, DeviceStats, KernelInput, MemoryInfo
from accelerate_lab.hal.gguf_quant import GGUF_KERNELS
from accelerate_lab.hal.kernels import encoder_layer_shape, matmul_q8_shape

__all__ = ["CpuDevice"]

Array = np.ndarray
Kernel = Callable[..., Any]


# erf(x) ~ x * P(x^2) / Q(x^2) on |x| <= 4 (erf(4) = 1 - 1.5e-8): the rational fit of XLA's and Eigen's
# float32 erf, highest power first. Evaluated in float64 it is within 1e-7 of erf (test_cpu_kernels.py).
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)
# gelu(x) = x * (1/2 + erf(x / sqrt 2) / 2) = x * (1/2 + x * P'(x^2) / Q'(x^2)): the same fit, rescaled
_GELU_P = tuple(c / 2**power * 0.5 / math.sqrt(2) for power, c in zip(range(6, -1, -1), _ERF_P, strict=True))
_GELU_Q = tuple(c / 2**power for power, c in zip(range(4, -1, -1), _ERF_Q, strict=True))
_GELU_LIMIT = 4 * math.sqrt(2)  # x / sqrt 2 = 4, where the fit ends
_GELU_ARRAYS = (np.array(_GELU_P), np.array(_GELU_Q))  # for the compiled kernel (cpu_nn.gelu)
_FITTED = (np.dtype(np.float32), np.dtype(np.float16))  # float64 (and the rest): scipy's erf
_BLOCK = 1 << 14  # elements per block of the float64 work of erf and gelu: it stays in the L2 cache


def _horner(x2: Array, coefficients: tuple[float, ...], out: Array) -> None:
    """``out`` <- the polynomial with ``coefficients`` (highest power first) at ``x2``, in place."""
    np.multiply(x2, coefficients[0], out=out)
    out += coefficients[1]
    for c in coefficients[2:]:
        out *= x2
        out += c


def _odd_rational(
    t: Array, p: Array, q: Array, numerator: tuple[float, ...], denominator: tuple[float, ...]
) -> None:
    """``t`` <- ``t * numerator(t^2) / denominator(t^2)`` for a float64 block; ``p``, ``q`` scratch blocks."""
    np.multiply(t, t, out=q)
    _horner(q, numerator, p)
    p *= t
    _horner(q, denominator, t)
    np.divide(p, t, out=t)


def _blockwise(x: Array, step: Callable[[Array, Array, Array, Array, Array], None]) -> Array:
    """``x``'s shape and dtype, computed block by block by ``step(x_block, out_block, t, p, q)`` with
    float64 scratch blocks ``t``, ``p``, ``q``: no full-size temporary is made."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.shape, x.dtype)
    t, p, q = np.empty((3, min(_BLOCK, flat.size)))
    for start in range(0, flat.size, _BLOCK):
        n = min(_BLOCK, flat.size - start)
        step(flat[start : start + n], out[start : start + n], t[:n], p[:n], q[:n])
    return out.reshape(x.shape)


def _erf_step(x: Array, out: Array, t: Array, p: Array, q: Array) -> None:
    np.clip(x, -4.0, 4.0, out=t)
    _odd_rational(t, p, q, _ERF_P, _ERF_Q)
    out[...] = t


def _gelu_step(x: Array, out: Array, t: Array, p: Array, q: Array) -> None:
    np.clip(x, -_GELU_LIMIT, _GELU_LIMIT, out=t)
    _odd_rational(t, p, q, _GELU_P, _GELU_Q)
    t += 0.5
    np.maximum(t, 0.0, out=t)  # the fit overshoots erf(-4) = -1 + 1.5e-8 by 6e-8: gelu(-30) is 0, not 1e-6
    np.multiply(t, x, out=out)


def _erf(x: Array) -> Array:
    if x.dtype in _FITTED:
        return _blockwise(x, _erf_step)
    from scipy.special import erf  # imported on first use: scipy is slow to import

    return np.asarray(erf(x))


def _matmul(a: Array, b: Array) -> Array:
    compiled = cpu_nn.matmul(a, b)
    return np.matmul(a, b) if compiled is None else compiled


def _fused_linear(
    x: Array, weight: Array, bias: Array | None, residual: Array | None, activation: str = "none"
) -> Array:
    gelu = (*_GELU_ARRAYS, _GELU_LIMIT) if activation == "gelu" else None
    compiled = cpu_nn.matmul(x, weight, bias, residual, gelu)
    if compiled is not None:
        return compiled
    out = _matmul(x, weight)
    if bias is not None:
        out = _add(out, bias)
    if activation == "gelu":
        out = _gelu(out)
    return out if residual is None else _add(out, residual)


def _encoder_layer(
    x: Array, mask: Array | None, *weights: Array, heads: int, eps: float, pre_norm: bool
) -> Array:
    """The layers in one compiled call (`cpu_nn.encoder_layer`): the kernels ``EncoderLayer``
    composes, in its order, without Python between them."""
    encoder_layer_shape(x, mask, weights, heads)
    if any(a.dtype != np.float32 for a in (x, *weights)) or (mask is not None and mask.dtype != np.bool_):
        raise UnsupportedKernelError("the cpu's encoder_layer takes float32 x and weights and a bool mask")
    hidden = None if mask is None else ~mask.reshape(mask.shape[0], mask.shape[-1])
    gelu = (*_GELU_ARRAYS, _GELU_LIMIT)
    out = cpu_nn.encoder_layer(
        x, None if hidden is None or not hidden.any() else hidden, weights, heads, eps, pre_norm, gelu
    )
    if out is None:
        raise UnsupportedKernelError(
            "the cpu's encoder_layer needs its compiled kernels and numpy's OpenBLAS"
        )
    return out


def _add(a: Array | float, b: Array | float) -> Array:
    compiled = cpu_nn.add(a, b) if type(a) is np.ndarray and type(b) is np.ndarray else None
    return np.add(a, b) if compiled is None else compiled


def _sigmoid(x: Array) -> Array:
    # exp of a non-positive number only: no overflow for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _gelu(x: Array, approximate: str = "none") -> Array:
    half = x.dtype.type(0.5)
    if approximate == "tanh":
        c = x.dtype.type(math.sqrt(2 / math.pi))
        return half * x * (1 + np.tanh(c * (x + x.dtype.type(0.044715) * x**3)))
    if x.dtype in _FITTED:
        compiled = cpu_nn.gelu(x, *_GELU_ARRAYS, _GELU_LIMIT)
        return _blockwise(x, _gelu_step) if compiled is None else compiled
    return half * x * (1 + _erf(x / math.sqrt(2)))


def _softmax(x: Array, axis: int) -> Array:
    compiled = cpu_nn.softmax(x, 1.0) if axis == x.ndim - 1 else None
    if compiled is not None:
        return compiled
    shifted = x - x.max(axis=axis, keepdims=True)
    if shifted.dtype.kind != "f":  # integers: float64, as numpy's exp gives them
        shifted = shifted.astype(np.float64)
    return _exp_normalize(shifted, axis)


def _exp_normalize(shifted: Array, axis: int) -> Array:
    """``exp(shifted) / sum(exp(shifted))`` along ``axis``, in ``shifted``'s own memory."""
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


def _log_softmax(x: Array, axis: int) -> Array:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _layer_norm(x: Array, weight: Array | None, bias: Array | None, eps: float) -> Array:
    compiled = cpu_nn.layer_norm(x, weight, bias, eps)
    if compiled is not None:
        return compiled
    work = x.astype(np.float32) if x.dtype == np.float16 else x
    out = work - work.mean(axis=-1, keepdims=True)  # the result, computed in place from here
    var = np.square(out).mean(axis=-1, keepdims=True)
    var += eps
    out *= 1 / np.sqrt(var)
    if weight is not None:
        out *= weight
    if bias is not None:
        out += bias
    return out.astype(x.dtype, copy=False)


def _argmax(x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
    if axis is None:
        out = np.asarray(np.argmax(x))
        return out.reshape((1,) * x.ndim) if keepdims else out
    return np.argmax(x, axis=axis[0], keepdims=keepdims)


def _embedding(ids: Array, table: Array) -> Array:
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise IndexError(f"embedding ids must lie in [0, {table.shape[0]}), got {ids.min()}..{ids.max()}")
    out = cpu_buffers.empty((*ids.shape, *table.shape[1:]), table.dtype)  # a reused block: no page faults
    return np.take(table, ids, axis=0, out=out, mode="clip")  # (the ids are checked: "clip" copies once)


def _embedding_backward(ids: Array, grad: Array, num_embeddings: int) -> Array:
    out = np.zeros((num_embeddings, grad.shape[-1]), dtype=grad.dtype)
    np.add.at(out, ids.reshape(-1), grad.reshape(-1, grad.shape[-1]))
    return out


def _grouped_windows(
    x: Array,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> Array:
    """(N, groups, C/groups, *out, *k) strided windows of the zero-padded input (a view of the padding)."""
    nd = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0), *((p, p) for p in padding)])
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    view = sliding_window_view(xp, span, axis=tuple(range(2, 2 + nd)))
    index = (slice(None), slice(None), *(slice(None, None, s) for s in stride))
    view = view[(*index, *(slice(None, None, d) for d in dilation))]
    return _split_channels(view, groups)


def _split_channels(a: Array, groups: int) -> Array:
    """(N, G, C/G, ...) from (N, C, ...): the channel axis split into its groups."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])


def _subscripts(nd: int) -> tuple[str, str]:
    """einsum letters for the output positions and the kernel offsets of an nd convolution."""
    return "xyz"[:nd], "hwd"[:nd]


def _grouped(a: Array, groups: int) -> Array:
    """(G, A/G, ...) view of an array whose first axis holds the groups' channels back to back."""
    return a.reshape(groups, a.shape[0] // groups, *a.shape[1:])


def _conv(
    x: Array,
    w: Array,
    bias: Array | None,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> Array:
    shapes.conv_output_shape(x.shape, w.shape, stride, padding, dilation, groups)
    nd = len(stride)
    s, k = _subscripts(nd)
    v = _grouped_windows(x, w.shape[2:], stride, padding, dilation, groups)
    if groups == 1 and x.dtype == w.dtype == np.float32:
        # one product of the windows, (N * out, C * k), with the weight: split over the threads
        windows = np.moveaxis(v[:, 0], 1, 1 + nd)  # (N, *out, C, *k)
        product = _fused_linear(windows.reshape(-1, w[0].size), w.reshape(w.shape[0], -1).T, bias, None)
        product = product.reshape(*windows.shape[: 1 + nd], w.shape[0])
        return np.ascontiguousarray(np.moveaxis(product, -1, 1))
    with cpu_blas.single_threaded():  # OpenBLAS's threads would spin against the compiled kernels'
        out = np.einsum(f"ngc{s}{k},goc{k}->ngo{s}", v, _grouped(w, groups), optimize=True)
    out = out.reshape(x.shape[0], w.shape[0], *out.shape[3:])
    if bias is not None:
        out = out + bias.reshape(1, -1, *([1] * len(stride)))
    return np.ascontiguousarray(out)


def _conv_backward_input(
    grad: Array,
    w: Array,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> Array:
    n, c = input_shape[:2]
    g = _split_channels(grad, groups)
    s, k = _subscripts(len(stride))
    cols = np.einsum(f"ngo{s},goc{k}->ngc{s}{k}", g, _grouped(w, groups), optimize=True)
    cols = cols.reshape(n, c, *cols.shape[3:])
    padded = np.zeros(
        (n, c, *(size + 2 * p for size, p in zip(input_shape[2:], padding, strict=True))), grad.dtype
    )
    out_sizes = grad.shape[2:]
    for offset in np.ndindex(*w.shape[2:]):
        target = tuple(
            slice(j * d, j * d + (m - 1) * st + 1, st)
            for j, d, m, st in zip(offset, dilation, out_sizes, stride, strict=True)
        )
        padded[(slice(None), slice(None), *target)] += cols[(Ellipsis, *offset)]
    crop = tuple(slice(p, p + size) for p, size in zip(padding, input_shape[2:], strict=True))
    return np.ascontiguousarray(padded[(slice(None), slice(None), *crop)])


def _conv_backward_weight(
    x: Array,
    grad: Array,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> Array:
    v = _grouped_windows(x, weight_shape[2:], stride, padding, dilation, groups)
    g = _split_channels(grad, groups)
    s, k = _subscripts(len(stride))
    dw = np.einsum(f"ngo{s},ngc{s}{k}->goc{k}", g, v, optimize=True)
    return np.ascontiguousarray(dw.reshape(weight_shape))


def _matmul_q8(x: Array, weight: Array, scale: Array, x_scale: Array, bias: Array | None) -> Array:
    """``(x * x_scale) @ q.T`` in float32 on the unpacked int8 rows, then each column times its scale
    (as the WGSL does: the scale is constant along K, so it is applied once per output), plus the bias."""
    matmul_q8_shape(x, weight, scale, x_scale, bias)
    q = np.ascontiguousarray(weight, dtype="<i4").view(np.int8)[:, : x.shape[1]]
    out = ((x.astype(np.float32, copy=False) * x_scale) @ q.T.astype(np.float32)) * scale
    if bias is not None:
        out = out + bias
    return out.astype(x.dtype, copy=False)


def _attend(
    q: Array,
    k: Array,
    v1: Array,
    added: Array | None,
    hidden: Array | None,
    factor: np.generic,
    rowwise: bool,
) -> Array:
    """``exp(scores - shift) @ v1`` for one slice, ``v1`` being ``v`` with a column of ones (the last
    column of the result holds the softmax's denominators); ``shift`` the slice's maximum score (one
    cheap reduction) or, ``rowwise``, each row's own."""
    # a contiguous k.T: numpy's batched matmul takes a slow path (~100x) for a swapped-axes operand
    scores = np.matmul(q, np.ascontiguousarray(np.swapaxes(k, -1, -2)))
    scores *= factor
    if added is not None:
        scores += added
    if hidden is not None:
        np.copyto(scores, scores.dtype.type(-np.inf), where=hidden)
    scores -= scores.max(axis=-1, keepdims=True) if rowwise else scores.max()
    np.exp(scores, out=scores)
    return np.matmul(scores, v1)


# scores computed at once by the compiled attention, about one L2 cache (Whisper's encoder attention,
# one thread: 51 ms in blocks of 1 MB, 47 of 2 MB, 46 of whole 9 MB heads; numpy's path 76)
_SCORES_BYTES = 2 << 20


def _rows(a: Array | None, unit: tuple[int, ...], start: int, stop: int) -> Array | None:
    """Rows ``start:stop`` of ``a[unit]`` (a broadcast mask's single row stays whole)."""
    return None if a is None else a[unit] if a.shape[-2] == 1 else a[unit][..., start:stop, :]


def _sdpa_compiled(
    q: Array, k: Array, v: Array, added: Array | None, hidden: Array | None, factor: float, out: Array
) -> bool:
    """`_sdpa` with the compiled softmax (scale, mask, each row's own maximum, exponentials and
    normalisation in one call, in place) between two matmuls, over blocks of at most
    ``_SCORES_BYTES`` of scores: a slice of the first batch axis where its scores fit (BERT's heads
    at once), else one head's queries a block of rows at a time (Whisper's 1500 frames). False, with
    nothing done, where it does not apply: other dtypes than float32, no compiled kernels, both a float
    and a bool mask, an empty batch, no queries or no keys."""
    length, source = q.shape[-2], k.shape[-2]
    if (
        cpu_nn.library() is None
        or not q.dtype == k.dtype == v.dtype == np.float32
        or (added is not None and hidden is not None)
        or 0 in (*q.shape[:-1], source)
    ):
        return False
    if q[0].size // q.shape[-1] * source * 4 <= _SCORES_BYTES:
        units, step = [(i,) for i in range(q.shape[0])], length
    else:
        units, step = list(np.ndindex(*q.shape[:-2])), max(1, _SCORES_BYTES // (4 * source))
    scores = np.empty((*q[units[0]].shape[:-2], min(step, length), source), np.float32)
    for unit in units:
        # a contiguous k.T: numpy's batched matmul takes a slow path (~100x) for a swapped-axes operand;
        # a few queries (decoding steps) take k @ q.T instead, reading the keys where they are
        keys = None if length < _KERNEL_QUERIES else np.ascontiguousarray(np.swapaxes(k[unit], -1, -2))
        for start in range(0, length, step):
            stop = min(start + step, length)
            block = scores[..., : stop - start, :]
            if keys is None:
                block[...] = np.swapaxes(k[unit] @ np.swapaxes(q[unit][..., start:stop, :], -1, -2), -1, -2)
            else:
                np.matmul(q[unit][..., start:stop, :], keys, out=block)
            mask = (_rows(added, unit, start, stop), _rows(hidden, unit, start, stop))
            cpu_nn.softmax(block, factor, *mask, out=block)
            np.matmul(block, v[unit], out=out[unit][..., start:stop, :])
    return True


# queries from which the compiled attention kernel (cpu_nn.attention) runs: it copies each head's keys
# and values into padded scratch first, which one query (Whisper's decoding steps) does not repay
_KERNEL_QUERIES = 8


def _sdpa(q: Array, k: Array, v: Array, mask: Array | None, is_causal: bool, scale: float | None) -> Array:
    """Fused attention: one slice of the first batch axis at a time (its scores stay in the cache), with
    the scale, the mask and the exponentials applied in place on the scores, and the softmax's division
    done on the (smaller) output."""
    factor = q.dtype.type(1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    operands = (q, k, v) if mask is None else (q, k, v, mask)
    lead = np.broadcast_shapes(*(a.shape[:-2] for a in operands))
    if not lead:
        return _sdpa(q[None], k[None], v[None], mask, is_causal, scale)[0]

    def full(a: Array) -> Array:
        """``a`` broadcast over the batch axes, its last two axes kept (a 1-D mask is one row)."""
        return (
            np.broadcast_to(a, (*lead, *a.shape[-2:]))
            if a.ndim > 1
            else np.broadcast_to(a, (*lead, 1, *a.shape))
        )

    length, source = q.shape[-2], k.shape[-2]
    added = None if mask is None or mask.dtype == np.bool_ else full(mask)
    hide = None if mask is None or mask.dtype != np.bool_ else ~mask
    if is_causal:
        above = ~np.tril(np.ones((length, source), dtype=bool))
        hide = above if hide is None else hide | above
    hidden = None if hide is None or not hide.any() else full(hide)
    q, k = full(q), full(k)
    # (..., L, heads, Ev) in memory: merging the heads back, (..., L, heads * Ev), is then a free reshape
    out = np.swapaxes(cpu_buffers.empty((*lead[:-1], length, lead[-1], v.shape[-1]), q.dtype), -3, -2)
    v_full = np.broadcast_to(v, (*lead, *v.shape[-2:]))
    if length >= _KERNEL_QUERIES and cpu_nn.attention(q, k, v_full, added, hidden, float(factor), out):
        return out
    if _sdpa_compiled(q, k, v_full, added, hidden, float(factor), out):
        return out
    v1 = np.ones((*lead, source, v.shape[-1] + 1), np.result_type(q, k, v))
    v1[..., :-1] = v
    # a row whose maximum lies this far below its slice's has exponentials near underflow: redo the slice
    # shifting each row by its own maximum
    floor = np.sqrt(np.finfo(v1.dtype).tiny)
    for i in range(lead[0] if length else 0):
        parts = (
            q[i],
            k[i],
            v1[i],
            None if added is None else added[i],
            None if hidden is None else hidden[i],
        )
        weighted = _attend(*parts, factor, rowwise=False)
        if (weighted[..., -1] < floor).any():
            weighted = _attend(*parts, factor, rowwise=True)
        np.divide(weighted[..., :-1], weighted[..., -1:], out=out[i])
    return out


def _setitem(x: Array, value: Array | float, index: tuple[object, ...]) -> Array:
    x[index] = value
    return x


def _index_backward(grad: Array, shape: tuple[int, ...], index: tuple[object, ...]) -> Array:
    out = np.zeros(shape, dtype=grad.dtype)
    out[index] = grad
    return out


def _reduce(method: str) -> Kernel:
    """An ndarray reduction method (cheaper to call than numpy's function wrappers)."""

    def kernel(x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        return np.asarray(getattr(x, method)(axis=axis, keepdims=keepdims))

    return kernel


def _single_threaded_blas(kernel: Kernel) -> Kernel:
    """``kernel`` with numpy's BLAS on one thread: its products are small (attention's heads), and
    OpenBLAS's threads would spin for a while after each, taking the cores of the compiled kernels."""

    @functools.wraps(kernel)
    def run(*args: Any, **kwargs: Any) -> Any:
        with cpu_blas.single_threaded():
            return kernel(*args, **kwargs)

    return run


_KERNELS: dict[str, Kernel] = {
    "neg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sign": np.sign,
    "erf": _erf,
    "relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "silu": lambda x: x * _sigmoid(x),
    "gelu": _gelu,
    "cast": lambda x, dtype: x.astype(dtype),
    "add": _add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.true_divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "where": np.where,
    "matmul": _matmul,
    "matmul_q8": _matmul_q8,
    "fused_linear": _fused_linear,
    "encoder_layer": _encoder_layer,
    **{name: matmul_gguf(name) for name in GGUF_KERNELS},
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "max": _reduce("max"),
    "min": _reduce("min"),
    "var": lambda x, axis, keepdims, correction: np.asarray(
        np.var(x, axis=axis, keepdims=keepdims, ddof=correction)
    ),
    "argmax": _argmax,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "layer_norm": _layer_norm,
    "embedding": _embedding,
    "embedding_backward": _embedding_backward,
    "conv": _conv,
    "conv_backward_input": _conv_backward_input,
    "conv_backward_weight": _conv_backward_weight,
    "sdpa": _single_threaded_blas(_sdpa),
    "reshape": lambda x, shape: x.reshape(shape),
    "transpose": lambda x, axes: x.transpose(axes),
    "broadcast_to": np.broadcast_to,
    "copy": lambda x: np.array(x, order="C", copy=True),
    "getitem": lambda x, index: x[index],
    "setitem": _setitem,
    "index_backward": _index_backward,
    "concat": lambda *xs, axis: np.concatenate(xs, axis=axis),
}


def _shape_error(
    kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object], error: Exception
) -> ShapeError:
    """Explain a numpy ValueError in terms of the kernel's shapes (our rules first, numpy's words last)."""
    dims = [tuple(x.shape) for x in inputs if isinstance(x, np.ndarray)]
    try:
        if kernel == "matmul":
            shapes.matmul_shape(*dims)
        elif kernel in ("where", "add", "sub", "mul", "div", "pow", "maximum", "minimum") or kernel in (
            ["eq", "ne", "lt", "le", "gt", "ge"]
        ):
            shapes.broadcast_shapes(*dims)
        elif kernel == "broadcast_to":
            shapes.broadcast_shapes(dims[0], params["shape"])  # type: ignore[arg-type]
    except ShapeError as precise:
        return precise
    listed = ", ".join(str(d) for d in dims)
    return ShapeError(f"{kernel} on shapes {listed}: {error}")


def processor_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


class CpuDevice:
    """Runs every kernel with numpy on the host; the reference the other devices are tested against."""

    name = "cpu"

    def __init__(self) -> None:
        self.stats = DeviceStats()

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            name=self.name,
            kind="cpu",
            description=f"numpy {np.__version__} on {os.cpu_count()} CPU cores ({processor_name()})",
            features=("float16", "float64", "int64"),
        )

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> Buffer:
        return np.zeros(shape, dtype=dtype)

    def free(self, buffer: Buffer) -> None:
        """Nothing to do: numpy frees an array when its last reference goes."""

    def upload(self, array: np.ndarray) -> Buffer:
        return array

    def download(self, buffer: Buffer) -> np.ndarray:
        assert isinstance(buffer, np.ndarray)
        return buffer

    def supports(self, kernel: str) -> bool:
        if kernel == "encoder_layer":  # compiled only: EncoderLayer composes it otherwise
            return cpu_nn.library() is not None and cpu_blas.routines() is not None
        return kernel in _KERNELS

    def run(self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object]) -> Buffer:
        fn = _KERNELS.get(kernel)
        if fn is None:
            raise UnsupportedKernelError(f"the cpu device has no kernel {kernel!r}")
        try:
            out = fn(*inputs, **params)
        except ValueError as error:
            raise _shape_error(kernel, inputs, params, error) from error
        self.stats.dispatches += 1
        return out if type(out) is np.ndarray else np.asarray(out)

    def memory(self) -> MemoryInfo:
        """This process's resident memory (numpy buffers live there) and the machine's RAM."""
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        page = os.sysconf("SC_PAGE_SIZE")
        try:
            with open("/proc/self/statm") as f:
                current = int(f.read().split()[1]) * page
        except OSError:
            current = peak
        return MemoryInfo(current, peak, os.sysconf("SC_PHYS_PAGES") * page)
