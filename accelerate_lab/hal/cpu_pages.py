"""Long-lived arrays of the cpu device (a model's weights) in memory backed by 2 MiB pages.

A forward pass reads every weight once: at batch 1 that is a stream of tens of megabytes, and with
4 KiB pages each page of it is a TLB miss and a page-table walk (BERT-small's 42 MB of linear
weights are 10,000 pages; the TLB holds ~2,000). Where the kernel allows transparent huge pages
on request (``/sys/kernel/mm/transparent_hugepage/enabled`` is ``always`` or ``madvise``),
`huge_page_copy` puts a large array in its own anonymous mapping, aligned to 2 MiB and advised
``MADV_HUGEPAGE``, so the same bytes take 2 MiB pages: about a quarter off BERT at 1 x 128 tokens here.
The array's memory is unmapped when the last view of it goes. Only whole 2 MiB blocks of the array,
and a last partial block at least half full, are advised: the resident memory exceeds the array's
size by less than 1 MiB. Elsewhere (no THP, not Linux) the copy is an ordinary one.

>>> a = np.arange(600_000, dtype=np.float32).reshape(1000, 600)
>>> b = huge_page_copy(a)
>>> bool((b == a).all()), np.shares_memory(a, b), b.ctypes.data % HUGE_PAGE
(True, False, 0)
"""

from __future__ import annotations

import contextlib
import mmap

import numpy as np

__all__ = ["HUGE_PAGE", "MIN_BYTES", "huge_page_copy"]

HUGE_PAGE = 2 << 20
MIN_BYTES = 1 << 20  # smaller arrays would waste most of their one huge page

_ADVICE = getattr(mmap, "MADV_HUGEPAGE", None)  # Linux only
_ANONYMOUS = getattr(mmap, "MAP_ANONYMOUS", None)


def huge_page_copy(array: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable copy of ``array``, in 2 MiB pages where it is large and the kernel allows."""
    nbytes = array.nbytes
    if nbytes < MIN_BYTES or _ADVICE is None or _ANONYMOUS is None:
        return np.array(array, order="C", copy=True)
    # room to align the start, and for the last huge page (untouched room costs no memory)
    mapping = mmap.mmap(-1, nbytes + 2 * HUGE_PAGE, flags=mmap.MAP_PRIVATE | _ANONYMOUS)
    whole = np.frombuffer(mapping, np.uint8)
    start = -whole.ctypes.data % HUGE_PAGE
    blocks, rest = divmod(nbytes, HUGE_PAGE)
    advised = (blocks + (rest >= HUGE_PAGE // 2)) * HUGE_PAGE
    if advised:
        with contextlib.suppress(OSError):  # a kernel without transparent huge pages: 4 KiB pages
            mapping.madvise(_ADVICE, start, advised)
    out = whole[start : start + nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out
