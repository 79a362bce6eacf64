"""Finding storages with bit-identical contents: grouped by device, dtype and shape, then by their
bytes (small storages) or a digest of them confirmed byte for byte (large ones).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from accelerate_lab.errors import DeviceError
from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["StorageUsers", "duplicate_storages"]

StorageUsers = list[SharedTensor]  # the live tensors that read one storage
_INLINE_BYTES = 4096  # up to this size the bytes themselves are the key: no digest, no second comparison


def duplicate_storages(tensors: Iterable[SharedTensor]) -> list[list[StorageUsers]]:
    """Groups of distinct storages with identical contents; within a group the oldest storage comes first."""
    layouts: dict[tuple[str, str, tuple[int, ...]], dict[int, StorageUsers]] = {}
    for tensor in tensors:
        storage = tensor._storage
        if storage is not None:
            key = (tensor.storage_type, tensor.dtype, tensor.shape)
            layouts.setdefault(key, {}).setdefault(id(storage), []).append(tensor)
    groups: list[list[StorageUsers]] = []
    for storages in layouts.values():
        if len(storages) > 1:
            groups.extend(_identical(storages.values()))
    return [sorted(group, key=lambda users: min(t.serial for t in users)) for group in groups]


def _identical(storages: Iterable[StorageUsers]) -> list[list[StorageUsers]]:
    by_content: dict[bytes, list[tuple[StorageUsers, np.ndarray]]] = {}
    for users in storages:
        storage = users[0]._storage
        assert storage is not None
        try:
            raw = storage.flat.numpy().view(np.uint8)
        except DeviceError:  # data not readable on the host yet (a browser tensor): not compared
            continue
        key = raw.tobytes() if raw.nbytes <= _INLINE_BYTES else hashlib.blake2b(raw.data, digest_size=16).digest()
        by_content.setdefault(key, []).append((users, raw))
    groups = []
    for candidates in by_content.values():
        if len(candidates) > 1:
            first = candidates[0][1]
            same = [u for u, raw in candidates if raw.nbytes <= _INLINE_BYTES or np.array_equal(raw, first)]
            if len(same) > 1:
                groups.append(same)
    return groups
