"""The cpu device's compiled float32 nn kernels (``csrc/nn.c``): gelu, layer norm, softmax rows.

Each function returns ``None`` where it does not apply (no compiled library: see
:func:`~accelerate_lab.hal.cpu_native.native_status`; another dtype or layout), and the caller then
runs its numpy kernel. Inputs that are not contiguous are copied first; results are new arrays
(softmax writes into ``out`` where given).

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

import numpy as np

from accelerate_lab.hal import cpu_native

__all__ = ["gelu", "layer_norm", "library", "softmax"]

Array = np.ndarray
_F32 = np.dtype(np.float32)
_P, _I, _D, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_float


@functools.cache
def library() -> ctypes.CDLL | None:
    """``csrc/nn.c`` compiled, its functions typed; None where native kernels are off."""
    lib = cpu_native.load("nn")
    if lib is None:
        return None
    lib.al_gelu_f32.argtypes = [_P, _P, _I, _P, _P, _D]
    lib.al_layer_norm_f32.argtypes = [_P, _P, _P, _P, _I, _I, _D]
    lib.al_softmax_f32.argtypes = [_P, _P, _I, _I, _F, _P, _P, _I, _I, _I]
    for function in (lib.al_gelu_f32, lib.al_layer_norm_f32, lib.al_softmax_f32):
        function.restype = None
    return lib


def _address(a: Array | None) -> int | None:
    return None if a is None else a.ctypes.data


def gelu(x: Array, numerator: Array, denominator: Array, limit: float) -> Array | None:
    """Exact gelu of float32 ``x`` by the odd rational fit ``t * numerator(t^2) / denominator(t^2)``
    of ``erf(t) / 2`` (float64 coefficients, 7 and 5, highest power first) on ``t`` clamped to
    ``[-limit, limit]``, evaluated in float64."""
    lib = library()
    if lib is None or x.dtype != _F32:
        return None
    out = np.empty(x.shape, _F32)
    x = np.ascontiguousarray(x)  # (a 0-d x comes back 1-d: out keeps its shape)
    lib.al_gelu_f32(
        x.ctypes.data, out.ctypes.data, x.size, numerator.ctypes.data, denominator.ctypes.data, limit
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
    out = np.empty_like(x)
    w, b = _vector(weight, width), _vector(bias, width)
    lib.al_layer_norm_f32(
        x.ctypes.data, _address(w), _address(b), out.ctypes.data, x.size // width, width, eps
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
    out = np.empty_like(x) if out is None else out
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
    )
    return out
