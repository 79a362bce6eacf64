"""Finding storages with bit-identical contents: grouped by device, dtype and shape, then by their
bytes (small storages) or a digest of them confirmed byte for byte (large ones).

Built for 100,000 tensors: one pass, one dict entry per storage, lists only for duplicates.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from accelerate_lab.errors import DeviceError
from accelerate_lab.sharing._storage import Storage
from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["Duplicates", "duplicate_storages"]

_INLINE_BYTES = 4096  # up to this size the bytes themselves are the key: no digest, no second comparison


@dataclass(frozen=True)
class Duplicates:
    """Groups of distinct storages with identical contents, each oldest first."""

    groups: list[list[Storage]]
    _first_user: dict[Storage, SharedTensor]
    _more_users: dict[Storage, list[SharedTensor]]

    def users(self, storage: Storage) -> list[SharedTensor]:
        """The tensors that read ``storage``."""
        return [self._first_user[storage], *self._more_users.get(storage, ())]


def duplicate_storages(tensors: Iterable[SharedTensor]) -> Duplicates:
    """The live storages of ``tensors`` that hold identical contents."""
    # Storages are dict keys by identity, contents are bytes (untracked by the garbage collector) and
    # lists exist only for duplicates: per-storage objects would dominate the time at 100,000 tensors.
    first_user: dict[Storage, SharedTensor] = {}
    more_users: dict[Storage, list[SharedTensor]] = {}  # storages read by several tensors (after a dedupe)
    for tensor in tensors:
        storage = tensor._storage
        if storage is None:
            continue
        if storage in first_user:
            more_users.setdefault(storage, []).append(tensor)
        else:
            first_user[storage] = tensor
    crowded = {layout for layout, n in Counter(t._layout for t in first_user.values()).items() if n > 1}
    first: dict[bytes, Storage] = {}
    groups: dict[Storage, list[Storage]] = {}
    for storage in sorted(first_user, key=attrgetter("serial")):
        layout = first_user[storage]._layout
        if layout not in crowded:
            continue
        try:
            host = storage.flat.numpy()
        except DeviceError:  # data not readable on the host yet (a browser tensor): not compared
            continue
        inline = storage.nbytes <= _INLINE_BYTES
        content = host.tobytes() if inline else hashlib.blake2b(host.data, digest_size=16).digest()
        seen = first.setdefault(layout + content, storage)
        if seen is storage or not (inline or _same_bytes(host, seen.flat.numpy())):
            continue
        group = groups.get(seen)
        if group is None:
            groups[seen] = [seen, storage]
        else:
            group.append(storage)
    return Duplicates(list(groups.values()), first_user, more_users)


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))
