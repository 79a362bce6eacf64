"""Finding storages with bit-identical contents: grouped by layout (device, dtype and shape), then by
their bytes (small storages) or a digest of them confirmed byte for byte (large ones).

Built for 100,000 tensors: the pool keeps its live storages indexed by layout, so only layouts that
more than one storage share are read (no pass over the tensors), and per layout the work per storage
(reading, comparing bytes) runs in C through ``map``, ``compress`` and ``dict``; a Python loop only
for storages large enough that their digest dominates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, is_, ne

import numpy as np

from accelerate_lab.errors import DeviceError
from accelerate_lab.sharing._storage import Storage
from accelerate_lab.sharing._tensor import SharedTensor
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["Duplicates", "duplicate_storages"]

_INLINE_BYTES = 4096  # up to this size the bytes themselves are the key: no digest, no second comparison

_SERIAL = attrgetter("serial")
_NBYTES = attrgetter("nbytes")
_READER = attrgetter("reader")
_LAST_READER = attrgetter("last_reader")
_HOST = Tensor.numpy  # a plain function: mapped, much cheaper than a methodcaller
_TENSOR = attrgetter("tensor")


@dataclass(frozen=True)
class Duplicates:
    """Storages whose contents an older storage holds too: ``copies[i]`` holds what ``originals[i]``
    holds, ``originals[i]`` being the oldest storage with those contents; copies oldest first."""

    copies: list[Storage]
    originals: list[Storage]

    def moves(self) -> tuple[list[SharedTensor], list[Storage], list[int]]:
        """Each reader of a copy, the original it is to read, and the bytes its move releases (the
        copy's size for the copy's last reader, 0 for the others)."""
        firsts = list(map(_READER, self.copies))
        if all(map(is_, firsts, map(_LAST_READER, self.copies))):  # one reader per copy, the usual case
            return firsts, self.originals, list(map(_NBYTES, self.copies))
        moved: list[SharedTensor] = []
        targets: list[Storage] = []
        released: list[int] = []
        for copy, original in zip(self.copies, self.originals, strict=True):
            users = copy.readers
            moved += users
            targets += repeat(original, len(users))
            released += [*repeat(0, len(users) - 1), copy.nbytes]
        return moved, targets, released

    def groups(self) -> list[list[Storage]]:
        """Each original followed by its copies, in the order of their first copy."""
        groups: dict[Storage, list[Storage]] = {}
        for copy, original in zip(self.copies, self.originals, strict=True):
            groups.setdefault(original, [original]).append(copy)
        return list(groups.values())


def duplicate_storages(layouts: Mapping[str, Collection[Storage]]) -> Duplicates:
    """The storages (each layout's oldest first, as the pool indexes them) that hold the same
    contents as an older one of their layout."""
    copies: list[Storage] = []
    originals: list[Storage] = []
    crowded = [list(storages) for storages in layouts.values() if len(storages) > 1]
    for storages in crowded:
        _find_copies(storages, copies, originals)
    if len(crowded) > 1:  # copies of each layout are in age order; interleave the layouts by age
        order = sorted(range(len(copies)), key=list(map(_SERIAL, copies)).__getitem__)
        copies, originals = list(map(copies.__getitem__, order)), list(map(originals.__getitem__, order))
    return Duplicates(copies, originals)


def _find_copies(storages: list[Storage], copies: list[Storage], originals: list[Storage]) -> None:
    """Append each storage of ``storages`` (one layout, oldest first) whose contents an older one
    holds to ``copies``, and that older one to ``originals``."""
    storages, hosts = _on_host(storages)
    if len(storages) < 2:
        return
    nbytes = storages[0].nbytes
    if nbytes <= _INLINE_BYTES:
        keys = list(map(np.ndarray.tobytes, hosts))  # each array's bytes in C order (cheaper than bytes())
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
    """The storages readable on the host, and their data as arrays."""
    try:
        return storages, list(map(_HOST, map(_TENSOR, storages)))
    except DeviceError:  # some data not readable on the host yet (browser tensors): those are not compared
        readable, hosts = [], []
        for storage in storages:
            try:
                hosts.append(storage.tensor.numpy())
            except DeviceError:
                continue
            readable.append(storage)
        return readable, hosts


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8)))
