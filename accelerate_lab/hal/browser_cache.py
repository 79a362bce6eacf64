"""Weights kept in the notebook's browser across sessions, keyed by a content hash.

Uploads made inside :func:`cacheable_uploads` (a model's weights: ``models/weights.py`` wraps its
uploads in it), or with ``cacheable=True``, go to ``browser:webgpu`` as their SHA-256 hash and length
only (the ``cached`` command). The browser (``widget/src/weight_cache.ts``) looks each one up in its
IndexedDB, checks what it read against the length and the checksum stored with it (a damaged entry
counts as missing), and asks for the ones it lacks with a *need* message
``{"kind": "need", "seq", "hashes"}`` (one per batch: a model's weights go in one batch when the
kernel need not hold their bytes); the kernel answers with *fill* messages
``{"kind": "fill", "seq", "hashes", "more"}`` carrying their bytes, up to ``max_bytes`` each (the last
without ``more``; a hash it leaves out fails the batch), which the browser stores (least recently used
entries go past its size cap). So after a kernel restart or a page reload only the missing tensors
cross the comm.

Hashing a model's weights costs time on every load (about 0.16 s for 87 MiB), and so does reading and
converting them (about as much again). So what the tensors loaded from a weights file hash to is kept
across kernel restarts in a `HashIndex` (hash, dtype and shape per tensor): a JSON file under
``${ACCELERATE_LAB_CACHE:-~/.cache/accelerate_lab}/hashes/``, valid only while the weights file (absolute
path, size, mtime_ns), its folder's ``config.json`` and the code that turns file tensors into uploaded
bytes (the sources of ``accelerate_lab/models``, the wire encoding, this module, numpy's version) are
unchanged, and looked up by tensor name, upload count and precision. Uploads inside
:func:`indexed_hashes` record their hash there; a tensor the index knows is uploaded as a `Deferred`
(``BrowserProxyDevice.upload_deferred``): its hash goes at once, and the file is read only if the
browser asks for its bytes.

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

import functools
import hashlib
import json
import os
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "Deferred",
    "HashIndex",
    "Indexed",
    "cacheable_uploads",
    "content_hash",
    "indexed_hashes",
    "uploads_cacheable",
]

_cacheable: ContextVar[bool] = ContextVar("accelerate_lab_cacheable_uploads", default=False)
_indexed: ContextVar[tuple[HashIndex, str] | None] = ContextVar("accelerate_lab_indexed_hash", default=None)
_hashes: dict[int, str] = {}  # id(array) -> hash, dropped when the array is collected


class Indexed(NamedTuple):
    """What an upload from a weights file hashes to, and the dtype (``np.dtype.str``) and shape of the
    array uploaded."""

    digest: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Deferred:
    """The bytes of a cacheable upload, made (by ``make``: read, converted, encoded) only if the browser
    asks for them; ``nbytes`` long."""

    nbytes: int
    make: Callable[[], memoryview]


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
        indexed = _indexed.get()
        entry = indexed[0].get(indexed[1]) if indexed is not None else None
        # the index's entry is of an array with this dtype and shape (else it is of another upload)
        same = entry is not None and (entry.dtype, entry.shape) == (array.dtype.str, array.shape)
        found = entry.digest if entry is not None and same else None
        if found is None:
            found = hashlib.sha256(data).hexdigest()
            if indexed is not None:
                indexed[0].put(indexed[1], Indexed(found, array.dtype.str, tuple(array.shape)))
        _hashes[key] = found
        weakref.finalize(array, _hashes.pop, key, None)
    return found


@contextmanager
def indexed_hashes(index: HashIndex, key: str) -> Iterator[None]:
    """:func:`content_hash` inside the block takes the hash of ``key`` from ``index`` (and stores it there
    when it has to compute it): the block uploads the tensor ``key`` derived from ``index``'s file."""
    token = _indexed.set((index, key))
    try:
        yield
    finally:
        _indexed.reset(token)


def cache_root() -> Path:
    """``$ACCELERATE_LAB_CACHE``, else ``~/.cache/accelerate_lab``."""
    return Path(os.environ.get("ACCELERATE_LAB_CACHE") or Path.home() / ".cache" / "accelerate_lab")


@functools.cache
def _code_version() -> str:
    """A fingerprint of the code that turns a weights file's tensors into uploaded bytes."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(np.__version__.encode())
    hal = [package / "hal" / name for name in ("browser_protocol.py", "browser_cache.py")]
    for source in [*sorted((package / "models").rglob("*.py")), *hal]:
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _identity(path: Path) -> tuple[dict[str, object], int]:
    """What the hashes of ``path``'s tensors depend on (any change to it makes them stale), and the
    latest modification time in it."""
    stat = path.stat()
    config = path.parent / "config.json"
    config_stat = config.stat() if config.is_file() else None
    identity = {
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "config": None if config_stat is None else [config_stat.st_size, config_stat.st_mtime_ns],
        "code": _code_version(),
    }
    return identity, max(stat.st_mtime_ns, config_stat.st_mtime_ns if config_stat else 0)


_RACY_NS = 2_000_000_000  # coarser than any file system's timestamps (FAT: 2 s)


class HashIndex:
    """The content hashes (with dtype and shape) of the tensors uploaded from one weights file, kept on
    disk across kernel restarts.

    Made before the file is opened (so a file replaced meanwhile fails the check in :meth:`save`); the
    index is read on the first :meth:`get` (a missing, corrupt or stale one reads as empty) and written
    atomically by :meth:`save` when it learnt new hashes and the file did not change since.
    """

    def __init__(self, weights_file: str | Path) -> None:
        self.source = Path(weights_file).resolve()
        name = hashlib.sha256(str(self.source).encode()).hexdigest()[:32]
        self.path = cache_root() / "hashes" / f"{name}.json"
        self.opened_ns = time.time_ns()
        self.identity, self.changed_ns = _identity(self.source)
        self._hashes: dict[str, Indexed] | None = None
        self._dirty = False

    def _read(self) -> dict[str, Indexed]:
        if self._hashes is None:
            self._hashes = {}
            try:
                stored = json.loads(self.path.read_text())
            except (OSError, ValueError):
                return self._hashes
            valid = isinstance(stored, dict) and stored.get("identity") == self.identity
            entries = stored.get("entries") if valid else None
            if isinstance(entries, dict):
                self._hashes = {k: e for k, v in entries.items() if (e := _entry(v)) is not None}
        return self._hashes

    def get(self, key: str) -> Indexed | None:
        """The stored entry of ``key``, if any."""
        return self._read().get(key)

    def put(self, key: str, entry: Indexed) -> None:
        """Remember ``entry`` for ``key`` (written by :meth:`save`)."""
        self._read()[key] = entry
        self._dirty = True

    def unchanged(self) -> bool:
        """Whether the weights file (and what else its hashes depend on) is as when the index was made."""
        try:
            return _identity(self.source)[0] == self.identity
        except OSError:
            return False

    def save(self) -> None:
        """Write the index (atomically) if it learnt hashes, unless the file changed since it was opened
        or had changed within ``_RACY_NS`` before (a change in the same timestamp tick would not show)."""
        if not self._dirty or self._hashes is None:
            return
        self._dirty = False
        try:
            if not self.unchanged() or self.opened_ns - self.changed_ns < _RACY_NS:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            entries = {k: [e.digest, e.dtype, list(e.shape)] for k, e in self._hashes.items()}
            text = json.dumps({"identity": self.identity, "entries": entries})
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as out:
                    out.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            pass  # a read-only or full disk: the hashes are computed again on the next load


def _entry(value: object) -> Indexed | None:
    """A stored ``[digest, dtype, shape]`` as an `Indexed`, or None where it is malformed."""
    if not (isinstance(value, list) and len(value) == 3):
        return None
    digest, dtype, shape = value
    good = isinstance(digest, str) and len(digest) == 64 and isinstance(dtype, str)
    if not good or not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        return None
    try:
        np.dtype(dtype)
    except TypeError:
        return None
    return Indexed(digest, dtype, tuple(shape))
