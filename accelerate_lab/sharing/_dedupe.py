"""Finding storages with bit-identical contents: grouped by layout (device, dtype and shape), then by
their bytes (small storages, all of a layout read at once) or a digest of them confirmed byte for byte
(large ones).

Built for 100,000 tensors: the work per storage (attribute reads, sorting, grouping, comparing bytes)
runs in C through ``map``, ``compress``, ``sorted`` and ``dict``; Python loops only where a storage has
several readers or is large enough for its digest to dominate.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import compress, groupby, repeat
from operator import attrgetter, is_not, methodcaller, ne

import numpy as np

from accelerate_lab.errors import DeviceError
from accelerate_lab.sharing._storage import Storage
from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["Duplicates", "duplicate_storages"]

_INLINE_BYTES = 4096  # up to this size the bytes themselves are the key: no digest, no second comparison

_STORAGE = attrgetter("_storage")
_LAYOUT = attrgetter("layout")
_SERIAL = attrgetter("serial")
_HOST = methodcaller("numpy")
_FLAT = attrgetter("flat")


@dataclass(frozen=True)
class Duplicates:
    """Storages whose contents an older storage holds too: ``copies[i]`` holds what ``originals[i]``
    holds, ``originals[i]`` being the oldest storage with those contents; copies oldest first."""

    copies: list[Storage] = field(default_factory=list)
    originals: list[Storage] = field(default_factory=list)
    first_user: dict[Storage, SharedTensor] = field(default_factory=dict)
    _more_users: dict[Storage, list[SharedTensor]] = field(default_factory=dict)

    def users(self, storage: Storage) -> list[SharedTensor]:
        """The tensors that read ``storage``."""
        return [self.first_user[storage], *self._more_users.get(storage, ())]

    def groups(self) -> list[list[Storage]]:
        """Each original followed by its copies, in the order of their first copy."""
        groups: dict[Storage, list[Storage]] = {}
        for copy, original in zip(self.copies, self.originals, strict=True):
            groups.setdefault(original, [original]).append(copy)
        return list(groups.values())


def duplicate_storages(tensors: Collection[SharedTensor]) -> Duplicates:
    """The live storages of ``tensors`` that hold the same contents as an older one."""
    live = list(compress(tensors, map(is_not, map(_STORAGE, tensors), repeat(None))))
    storages: list[Storage] = list(map(_STORAGE, live))
    first_user = dict(zip(reversed(storages), reversed(live), strict=True))  # the first reader wins
    more_users: dict[Storage, list[SharedTensor]] = {}
    if len(first_user) < len(live):  # storages read by several tensors (merged by an earlier dedupe)
        for tensor, storage in zip(live, storages, strict=True):
            if first_user[storage] is not tensor:
                more_users.setdefault(storage, []).append(tensor)
    crowded = {layout for layout, n in Counter(map(_LAYOUT, first_user)).items() if n > 1}
    if not crowded:
        return Duplicates(first_user=first_user, _more_users=more_users)
    candidates = list(compress(first_user, map(crowded.__contains__, map(_LAYOUT, first_user))))
    candidates.sort(key=_SERIAL)
    candidates.sort(key=_LAYOUT)  # stable: each layout's storages together, oldest first
    copies: list[Storage] = []
    originals: list[Storage] = []
    for _, same_layout in groupby(candidates, _LAYOUT):
        _find_copies(list(same_layout), copies, originals)
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
    """The bytes of each of ``hosts`` (arrays of one dtype and size), copied out in one numpy call."""
    if not nbytes:
        return [b""] * len(hosts)
    rows = np.stack(hosts).view(np.uint8)
    return list(rows.view(np.dtype((np.void, nbytes))).ravel().tolist())


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))
