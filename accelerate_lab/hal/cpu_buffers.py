"""Output arrays of the cpu device's big kernels, reused once nothing refers to them any more.

A model's forward pass allocates and drops arrays of the same few sizes over and over. malloc
serves large ones (from 128 KiB, its first mmap threshold) from fresh pages (mmap, or a heap it has
just trimmed), and each first touch of a page is a page fault: ~10,000 per BERT forward at 8 x 128
tokens, about a tenth of its time; at 1 x 128 a layer's 786 KB intermediate alone took the product
that writes it from 270 to 186 GFLOPS. Here an array of ``MIN_BYTES`` or more is a view of a kept
block; a block no array refers to (its reference count shows only this module's) is handed out again.
At most ``MAX_IDLE_BYTES`` of unused blocks are kept.

>>> a = empty((512, 1024), np.float32)
>>> a.shape, a.dtype == np.float32
((512, 1024), True)
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

__all__ = ["MAX_IDLE_BYTES", "MIN_BYTES", "empty"]

MIN_BYTES = 1 << 17  # smaller arrays: malloc serves them from its heap, below its mmap threshold
MAX_IDLE_BYTES = 256 << 20

_blocks: dict[int, list[np.ndarray]] = {}  # uint8 blocks by size, oldest first
_lock = threading.Lock()


def _idle(blocks: list[np.ndarray], i: int) -> bool:
    # the references: the list's and getrefcount's argument; any array viewing the block adds one
    return sys.getrefcount(blocks[i]) == 2


def _trim() -> None:
    """Drop idle blocks beyond ``MAX_IDLE_BYTES`` (the newest of each size first)."""
    excess = -MAX_IDLE_BYTES
    for size, blocks in _blocks.items():
        excess += size * sum(_idle(blocks, i) for i in range(len(blocks)))
    for size, blocks in list(_blocks.items()):
        for i in reversed(range(len(blocks))):
            if excess > 0 and _idle(blocks, i):
                del blocks[i]
                excess -= size
        if not blocks:
            del _blocks[size]


def empty(shape: tuple[int, ...], dtype: np.dtype[np.generic] | type[np.generic]) -> np.ndarray:
    """An uninitialised C-contiguous array, like ``np.empty``; a reused block where one is idle."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if size < MIN_BYTES:
        return np.empty(shape, dtype)
    with _lock:  # another thread must not take the same idle block
        blocks = _blocks.setdefault(size, [])
        for i in range(len(blocks)):
            if _idle(blocks, i):
                return blocks[i].view(dtype).reshape(shape)
        blocks.append(np.empty(size, np.uint8))
        out = blocks[-1].view(dtype).reshape(shape)
        _trim()
        return out
