"""Binding windows and pieces: how kernels of the ``wgpu`` device work past the binding limit.

A kernel's operand is bound as the byte window its elements span, at an offset aligned to the
adapter's ``min-storage-buffer-offset-alignment``, so a view deep inside a large buffer binds only
what it reads. When a window would exceed ``max-storage-buffer-binding-size`` the kernel's
iteration space (elements, rows of a matrix, batches, ...) is cut into boxes: :func:`fit_box`
finds the largest box in which every operand's window fits, :func:`pieces` walks the space box by
box, and each piece is one dispatch with its own windows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.wgpu_runtime import Binding

if TYPE_CHECKING:
    from accelerate_lab.hal.wgpu_runtime import Runtime, Storage

__all__ = ["Extent", "aligned_quantum", "bind_window", "fit_box", "pieces"]

Extent = tuple[int, Sequence[int], int]
"""An operand's reach over an iteration space: bytes per element, its element stride along each axis,
and the elements one point of the space already spans (a row of K values for a matmul's operand)."""


def bind_window(runtime: Runtime, storage: Storage, lo: int, hi: int, itemsize: int) -> tuple[Binding, int]:
    """Bind elements ``[lo, hi]`` at an aligned offset; returns the binding and its first element."""
    align = runtime.profile.storage_align
    start = (lo * itemsize) // align * align
    end = min(storage.nbytes, -(-((hi + 1) * itemsize) // 4) * 4)
    size = max(4, end - start)
    if size > runtime.profile.max_binding:
        raise DeviceError(
            f"a binding of {size} bytes exceeds this adapter's max-storage-buffer-binding-size "
            f"({runtime.profile.max_binding}); split the tensor or use the cpu device"
        )
    return (storage, start, size), start // itemsize


def fit_box(
    runtime: Runtime,
    extents: Sequence[Extent],
    dims: Sequence[int],
    quanta: Sequence[int] | None = None,
    unit: str = "element",
) -> list[int]:
    """The largest box (a sub-shape of ``dims``) in which every operand's window fits one binding.

    The axis that spreads the largest window is halved until all fit. ``quanta``: per axis, a size
    that a cut box is rounded down to a multiple of when it is at least that large (a kernel's tile,
    or the rows that keep each piece's start aligned). ``unit`` names one point of the space in the
    error raised when even that does not fit.
    """
    limit = runtime.profile.max_binding - 2 * runtime.profile.storage_align
    box = list(dims)
    while True:
        spans = [
            (base + sum(abs(s) * (b - 1) for s, b in zip(strides, box, strict=True)) + 1) * size
            for size, strides, base in extents
        ]
        worst = max(range(len(extents)), key=lambda k: spans[k])
        if spans[worst] <= limit:
            break
        strides = extents[worst][1]
        axis = max(range(len(box)), key=lambda d: abs(strides[d]) * (box[d] - 1))
        if box[axis] == 1:
            raise DeviceError(
                f"one {unit} needs a binding of {spans[worst]} bytes, more than this adapter's "
                f"max-storage-buffer-binding-size ({runtime.profile.max_binding}) allows; "
                "use the cpu device for it"
            )
        box[axis] = -(-box[axis] // 2)
    for d, q in enumerate(quanta or ()):
        if q > 1 and q <= box[d] < dims[d]:
            box[d] -= box[d] % q
    return box


def pieces(dims: Sequence[int], box: Sequence[int]) -> Iterator[tuple[tuple[int, ...], list[int]]]:
    """The origin and shape of each box of ``box`` that tiles ``dims`` (the last ones cut short)."""
    for origin in itertools.product(*(range(0, n, b) for n, b in zip(dims, box, strict=True))):
        yield origin, [min(b, n - o) for o, b, n in zip(origin, box, dims, strict=True)]


def aligned_quantum(runtime: Runtime, unit_bytes: int) -> int:
    """The fewest units of ``unit_bytes`` whose total is a multiple of the offset alignment."""
    align = runtime.profile.storage_align
    return align // math.gcd(align, unit_bytes) if unit_bytes else 1
