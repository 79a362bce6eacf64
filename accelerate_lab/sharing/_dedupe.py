"""Finding storages with bit-identical contents: grouped by layout (device, dtype and shape), then by
their bytes (small storages, all of a layout read at once) or a digest of them confirmed byte for byte
(large ones).

Built for 100,000 tensors: one Python pass over the tensors (each visit of 100,000 scattered objects
costs milliseconds), then per layout the work per storage (sorting, reading, comparing bytes) runs in C
through ``map``, ``compress``, ``sorted`` and ``dict``; a Python loop only for storages large enough
that their digest dominates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, methodcaller, ne

import numpy as np

from accelerate_lab.errors import DeviceError
from accelerate_lab.sharing._storage import Storage
from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["Duplicates", "duplicate_storages"]

_INLINE_BYTES = 4096  # up to this size the bytes themselves are the key: no digest, no second comparison

_SERIAL = attrgetter("serial")
_NBYTES = attrgetter("nbytes")
_HOST = methodcaller("numpy")
_FLAT = attrgetter("flat")


@dataclass(frozen=True)
class Duplicates:
    """Storages whose contents an older storage holds too: ``copies[i]`` holds what ``originals[i]``
    holds, ``originals[i]`` being the oldest storage with those contents; copies oldest first."""

    copies: list[Storage]
    originals: list[Storage]
    first_user: dict[Storage, SharedTensor]
    _more_users: dict[Storage, list[SharedTensor]]

    def users(self, storage: Storage) -> list[SharedTensor]:
        """The tensors that read ``storage``."""
        return [self.first_user[storage], *self._more_users.get(storage, ())]

    def moves(self) -> tuple[list[SharedTensor], list[Storage], list[int]]:
        """Each reader of a copy, the original it is to read, and the bytes its move releases (the
        copy's size for the copy's last reader, 0 for the others)."""
        if not self._more_users:  # one reader per storage, the usual case: all in C
            readers = list(map(self.first_user.__getitem__, self.copies))
            return readers, self.originals, list(map(_NBYTES, self.copies))
        moved: list[SharedTensor] = []
        targets: list[Storage] = []
        released: list[int] = []
        for copy, original in zip(self.copies, self.originals, strict=True):
            readers = self.users(copy)
            moved += readers
            targets += repeat(original, len(readers))
            released += [*repeat(0, len(readers) - 1), copy.nbytes]
        return moved, targets, released

    def groups(self) -> list[list[Storage]]:
        """Each original followed by its copies, in the order of their first copy."""
        groups: dict[Storage, list[Storage]] = {}
        for copy, original in zip(self.copies, self.originals, strict=True):
            groups.setdefault(original, [original]).append(copy)
        return list(groups.values())


def duplicate_storages(tensors: Iterable[SharedTensor]) -> Duplicates:
    """The live storages of ``tensors`` that hold the same contents as an older one."""
    first_user: dict[Storage, SharedTensor] = {}
    more_users: dict[Storage, list[SharedTensor]] = {}  # storages read by several tensors (after a dedupe)
    by_layout: dict[str, list[Storage]] = {}
    for tensor in tensors:  # one pass: at 100,000 tensors every further visit of each costs milliseconds
        storage = tensor._storage
        if storage is None:
            continue
        if storage in first_user:
            more_users.setdefault(storage, []).append(tensor)
            continue
        first_user[storage] = tensor
        same_layout = by_layout.get(storage.layout)
        if same_layout is None:
            by_layout[storage.layout] = [storage]
        else:
            same_layout.append(storage)
    copies: list[Storage] = []
    originals: list[Storage] = []
    crowded = [storages for storages in by_layout.values() if len(storages) > 1]
    for storages in crowded:
        storages.sort(key=_SERIAL)
        _find_copies(storages, copies, originals)
    if len(crowded) > 1:  # copies of each layout are in age order; interleave the layouts by age
        order = sorted(range(len(copies)), key=list(map(_SERIAL, copies)).__getitem__)
        copies, originals = list(map(copies.__getitem__, order)), list(map(originals.__getitem__, order))
    return Duplicates(copies, originals, first_user, more_users)


def _find_copies(storages: list[Storage], copies: list[Storage], originals: list[Storage]) -> None:
    """Append each storage of ``storages`` (one layout, oldest first) whose contents an older one
    holds to ``copies``, and that older one to ``originals``."""
    storages, hosts = _on_host(storages)
    if len(storages) < 2:
        return
    nbytes = storages[0].nbytes
    if nbytes <= _INLINE_BYTES:
        keys = _contents(hosts, nbytes)
        first = dict(zip(reversed(keys), reversed(range(len(keys))), strict=True))  # the oldest wins
        found = list(compress(range(len(keys)), map(ne, map(first.__getitem__, keys), range(len(keys)))))
        copies += map(storages.__getitem__, found)
        originals += map(storages.__getitem__, map(first.__getitem__, map(keys.__getitem__, found)))
        return
    seen: dict[bytes, int] = {}
    for i, host in enumerate(hosts):
        j = seen.setdefault(hashlib.blake2b(host.data, digest_size=16).digest(), i)
        if j != i and _same_bytes(host, hosts[j]):
            copies.append(storages[i])
            originals.append(storages[j])


def _on_host(storages: list[Storage]) -> tuple[list[Storage], list[np.ndarray]]:
    """The storages readable on the host, and their data as flat arrays."""
    try:
        return storages, list(map(_HOST, map(_FLAT, storages)))
    except DeviceError:  # some data not readable on the host yet (browser tensors): those are not compared
        readable, hosts = [], []
        for storage in storages:
            try:
                hosts.append(storage.flat.numpy())
            except DeviceError:
                continue
            readable.append(storage)
        return readable, hosts


def _contents(hosts: list[np.ndarray], nbytes: int) -> list[bytes]:
    """The bytes of each of ``hosts`` (flat arrays of one dtype, ``nbytes`` each), copied out together."""
    if not nbytes:
        return [b""] * len(hosts)
    return list(np.concatenate(hosts).view(np.dtype((np.void, nbytes))).tolist())


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))
