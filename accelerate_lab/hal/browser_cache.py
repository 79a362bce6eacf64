"""Weights kept in the notebook's browser across sessions, keyed by a content hash.

Uploads made inside :func:`cacheable_uploads` (a model's weights: ``models/weights.py`` wraps its
uploads in it), or with ``cacheable=True``, go to ``browser:webgpu`` as their SHA-256 hash and length
only (the ``cached`` command). The browser (``widget/src/weight_cache.ts``) looks each one up in its
IndexedDB, checks the hash of what it read, and asks for the ones it lacks with a *need* message
``{"kind": "need", "seq", "hashes"}``; the kernel answers with a *fill* message
``{"kind": "fill", "seq", "hashes"}`` carrying their bytes, which the browser stores (least recently
used entries go past its size cap). So after a kernel restart or a page reload only the missing
tensors cross the comm. SHA-256 because the browser can compute it too (WebCrypto has no BLAKE2).

>>> with cacheable_uploads():
...     uploads_cacheable()
True
>>> uploads_cacheable()
False
>>> a = np.arange(4, dtype=np.float32)
>>> content_hash(a, memoryview(a).cast("B"))[:16]
'4c9c4f354e74153d'
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

__all__ = ["cacheable_uploads", "content_hash", "uploads_cacheable"]

_cacheable: ContextVar[bool] = ContextVar("accelerate_lab_cacheable_uploads", default=False)
_hashes: dict[int, str] = {}  # id(array) -> hash, dropped when the array is collected


@contextmanager
def cacheable_uploads() -> Iterator[None]:
    """Uploads inside the block are weights: devices that keep weights across sessions may keep them."""
    token = _cacheable.set(True)
    try:
        yield
    finally:
        _cacheable.reset(token)


def uploads_cacheable() -> bool:
    """Whether the current code runs inside :func:`cacheable_uploads`."""
    return _cacheable.get()


def content_hash(array: np.ndarray, data: memoryview) -> str:
    """The SHA-256 (hex) of ``data``, the bytes of ``array`` as the browser stores them.

    Computed once per array object (weights do not change after loading: an array changed in place
    after a cacheable upload keeps its first hash).
    """
    key = id(array)
    found = _hashes.get(key)
    if found is None:
        found = hashlib.sha256(data).hexdigest()
        _hashes[key] = found
        weakref.finalize(array, _hashes.pop, key, None)
    return found
