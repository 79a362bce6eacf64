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
    """Groups of distinct storages with identical contents (each oldest first), and for every
    storage seen the name of one tensor that reads it."""

    groups: list[list[Storage]]
    names: dict[int, str]


def duplicate_storages(tensors: Iterable[SharedTensor]) -> Duplicates:
    """The live storages of ``tensors`` that hold identical contents."""
    # Layouts and contents are bytes, which the garbage collector does not track: its full passes
    # over a heap of 100,000 tensors would otherwise dominate the time.
    layouts: dict[int, bytes] = {}
    storages: dict[int, Storage] = {}
    names: dict[int, str] = {}
    for tensor in tensors:
        storage = tensor._storage
        if storage is not None and id(storage) not in storages:
            storages[id(storage)] = storage
            layouts[id(storage)] = tensor._layout
            names[id(storage)] = tensor.name
    crowded = {layout for layout, n in Counter(layouts.values()).items() if n > 1}
    first: dict[bytes, Storage] = {}
    groups: dict[int, list[Storage]] = {}
    for storage in sorted(storages.values(), key=attrgetter("serial")):
        layout = layouts[id(storage)]
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
        group = groups.get(id(seen))
        if group is None:
            groups[id(seen)] = [seen, storage]
        else:
            group.append(storage)
    return Duplicates(list(groups.values()), names)


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))
