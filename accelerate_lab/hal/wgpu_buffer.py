"""Buffers of the ``wgpu`` device: strided views of pooled GPU storage, and the view arithmetic.

``getitem``, ``transpose``, ``broadcast_to`` and ``reshape`` of a dense buffer are views (no
copy, no dispatch): a view is ``(storage, offset, strides)`` in elements, and every kernel reads
through strides (the elementwise kernels directly, the others after a dense copy when needed).
A buffer whose value is still a pending fused op has ``lazy`` set and no storage yet.

Storage types: float32, float16, int32 as themselves; uint8 and bool as one u32 per element;
int64 and float64 as two 32-bit words (``vec2<u32>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal.wgpu_runtime import Storage

if TYPE_CHECKING:
    from accelerate_lab.hal.fusion import Lazy

__all__ = [
    "WgpuBuffer",
    "broadcast_view",
    "concat_views",
    "getitem_view",
    "row_major",
    "span",
    "storage_dtype",
]

_STORAGE = {"uint8": np.dtype(np.uint32), "bool": np.dtype(np.uint32)}


def storage_dtype(dtype: np.dtype[np.generic]) -> np.dtype[np.generic]:
    """The numpy dtype of the GPU representation (uint8 and bool widen to uint32)."""
    return _STORAGE.get(dtype.name, dtype)


def row_major(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a dense row-major array."""
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= max(dim, 1)
    return tuple(reversed(strides))


class WgpuBuffer:
    """A tensor's data on the ``wgpu`` device: ``shape``/``dtype`` as numpy, a view of ``storage``."""

    __slots__ = ("__weakref__", "dtype", "lazy", "offset", "shape", "storage", "strides")

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: np.dtype[np.generic],
        storage: Storage | None,
        offset: int = 0,
        strides: tuple[int, ...] | None = None,
        lazy: Lazy | None = None,
    ) -> None:
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
        self.offset = offset
        self.strides = row_major(shape) if strides is None else strides
        self.lazy = lazy

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        """Bytes per element in storage."""
        return storage_dtype(self.dtype).itemsize

    def is_dense(self) -> bool:
        """Row-major and gap-free (any offset): kernels may index it as a flat array."""
        return all(
            s == r for d, s, r in zip(self.shape, self.strides, row_major(self.shape), strict=True) if d != 1
        )

    def view(self, shape: tuple[int, ...], strides: tuple[int, ...], offset: int) -> WgpuBuffer:
        return WgpuBuffer(shape, self.dtype, self.storage, offset, strides)

    def __repr__(self) -> str:
        state = "pending" if self.storage is None else f"offset={self.offset}, strides={self.strides}"
        return f"WgpuBuffer(shape={self.shape}, dtype={self.dtype.name}, {state})"


def span(shape: Sequence[int], strides: Sequence[int], offset: int) -> tuple[int, int]:
    """The lowest and highest element address a strided view touches (empty: ``(offset, offset - 1)``)."""
    if any(d == 0 for d in shape):
        return offset, offset - 1
    lo = offset + sum(min(0, (d - 1) * s) for d, s in zip(shape, strides, strict=True))
    hi = offset + sum(max(0, (d - 1) * s) for d, s in zip(shape, strides, strict=True))
    return lo, hi


def broadcast_view(buf: WgpuBuffer, shape: tuple[int, ...]) -> WgpuBuffer:
    """``buf`` read as ``shape`` under numpy broadcasting (stride 0 on new and stretched axes)."""
    extra = len(shape) - len(buf.shape)
    if extra < 0:
        raise ShapeError(f"cannot broadcast {buf.shape} to {shape}")
    strides = [0] * extra
    for dim, own, stride in zip(shape[extra:], buf.shape, buf.strides, strict=True):
        if own not in (dim, 1):
            raise ShapeError(f"cannot broadcast {buf.shape} to {shape}")
        strides.append(stride if own == dim else 0)
    return buf.view(shape, tuple(strides), buf.offset)


def getitem_view(buf: WgpuBuffer, index: tuple[object, ...]) -> WgpuBuffer:
    """numpy basic indexing (ints, slices, None, Ellipsis) as a view."""
    consumed = sum(1 for item in index if item is not None and item is not Ellipsis)
    if consumed > len(buf.shape):
        raise IndexError(f"too many indices for a tensor of shape {buf.shape}: {len(index)} given")
    if sum(1 for item in index if item is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    fill = (slice(None),) * (len(buf.shape) - consumed)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        items = (*index[:at], *fill, *index[at + 1 :])
    else:
        items = (*index, *fill)
    shape: list[int] = []
    strides: list[int] = []
    offset = buf.offset
    axis = 0
    for item in items:
        if item is None:
            shape.append(1)
            strides.append(0)
            continue
        size, stride = buf.shape[axis], buf.strides[axis]
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            shape.append(len(range(start, stop, step)))
            strides.append(stride * step)
            offset += start * stride if shape[-1] else 0
        else:
            position = int(item)  # type: ignore[call-overload]
            if not -size <= position < size:
                raise IndexError(f"index {position} is out of bounds for axis {axis} with size {size}")
            offset += (position % size) * stride
        axis += 1
    return buf.view(tuple(shape), tuple(strides), offset)


def concat_views(out: WgpuBuffer, sizes: Sequence[int], axis: int) -> list[WgpuBuffer]:
    """The views of ``out`` that parts of these ``sizes`` along ``axis`` fill, in order."""
    views, start = [], 0
    for size in sizes:
        views.append(getitem_view(out, (*(slice(None),) * axis, slice(start, start + size))))
        start += size
    return views
