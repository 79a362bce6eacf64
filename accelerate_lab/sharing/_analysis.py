"""Reading a manager's tensors: memory per tensor and per model, sharing opportunities, and the
recommended actions with the bytes each would free. Callers hold the manager's lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from accelerate_lab.sharing._dedupe import Duplicates
from accelerate_lab.sharing._ledger import format_bytes
from accelerate_lab.sharing._patterns import model_matches, tensor_types
from accelerate_lab.sharing._reports import (
    DuplicateGroup,
    ModelUsage,
    Recommendation,
    SharingAnalysis,
    TensorUsage,
)
from accelerate_lab.sharing._storage import Storage
from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["analyze", "model_usage", "recommend", "tensor_usage", "unshared_bytes"]


def _by_storage(tensors: Iterable[SharedTensor]) -> dict[int, list[SharedTensor]]:
    users: dict[int, list[SharedTensor]] = {}
    for tensor in tensors:
        users.setdefault(id(tensor._storage), []).append(tensor)
    return users


def tensor_usage(tensors: Sequence[SharedTensor]) -> dict[str, TensorUsage]:
    """Per tensor, sorted by name."""
    users = _by_storage(tensors)
    return {
        t.name: TensorUsage(
            bytes=t.get_memory_usage(),
            shape=t.shape,
            dtype=t.dtype,
            storage_type=t.storage_type,
            reference_count=t.reference_count,
            references=t._ref_dict(),
            producer=t.producer_model,
            tensor_type=t.tensor_type,
            pinned=t.is_pinned,
            views=tuple(t._views or ()),
            shares_storage_with=tuple(sorted(u.name for u in users[id(t._storage)] if u is not t)),
        )
        for t in sorted(tensors, key=lambda t: t.name)
    }


def model_usage(tensors: Sequence[SharedTensor]) -> dict[str, ModelUsage]:
    """Per model holding references, sorted by name; a storage counts once per model."""
    holders: dict[int, set[str]] = {}
    held: dict[str, dict[int, int]] = {}
    names: dict[str, list[str]] = {}
    for tensor in tensors:
        key, nbytes = id(tensor._storage), tensor.get_memory_usage()
        for model in tensor._ref_models():
            holders.setdefault(key, set()).add(model)
            held.setdefault(model, {})[key] = nbytes
            names.setdefault(model, []).append(tensor.name)
    report = {}
    for model in sorted(held):
        total = sum(held[model].values())
        exclusive = sum(n for key, n in held[model].items() if holders[key] == {model})
        report[model] = ModelUsage(total, exclusive, total - exclusive, tuple(sorted(names[model])))
    return report


def unshared_bytes(tensors: Sequence[SharedTensor]) -> int:
    """Bytes if no storage were shared: every model its own copy of each tensor it holds, and each
    name its own storage (one copy for a tensor no model holds)."""
    return sum(t.get_memory_usage() * max(1, len(t._ref_models())) for t in tensors)


def _duplicate_group(storages: list[Storage]) -> DuplicateGroup:
    names = tuple(t.name for s in storages for t in sorted(s.readers, key=lambda t: t.name))
    first = storages[0]
    return DuplicateGroup(names, first.device.name, first.nbytes, first.nbytes * (len(storages) - 1))


def analyze(tensors: Sequence[SharedTensor], found: Duplicates) -> SharingAnalysis:
    """Tensor types two or more active models could share, and the groups of identical contents
    ``found`` among their storages."""
    active = {m for t in tensors for m in t._ref_models()}
    active.update(t.producer_model for t in tensors if t.producer_model is not None)
    by_type = {}
    for tensor_type, families in tensor_types().items():
        matching = tuple(m for m in sorted(active) if any(model_matches(m, f) for f in families))
        if len(matching) >= 2:
            by_type[tensor_type] = matching
    duplicates = tuple(map(_duplicate_group, found.groups()))
    return SharingAnalysis(by_type, duplicates)


def _freeing(tensors: Sequence[SharedTensor], chosen: list[SharedTensor]) -> int:
    """Bytes released if every tensor in ``chosen`` were freed (shared storages only when all go)."""
    users = _by_storage(tensors)
    picked = {id(t) for t in chosen}
    released = {id(t._storage): t.get_memory_usage() for t in chosen}
    return sum(n for key, n in released.items() if all(id(u) in picked for u in users[key]))


def _share_candidates(tensors: Sequence[SharedTensor], duplicate_names: set[str]) -> list[Recommendation]:
    """Same-type tensors of one layout that compatible models hold separately (contents differ)."""
    found = []
    groups: dict[tuple[str, str, str, tuple[int, ...]], list[SharedTensor]] = {}
    for t in tensors:
        if t.tensor_type is not None and t.name not in duplicate_names and t._ref_total:
            groups.setdefault((t.tensor_type, t.storage_type, t.dtype, t.shape), []).append(t)
    for (tensor_type, *_), group in sorted(groups.items()):
        families = tensor_types().get(tensor_type, ())
        group = [t for t in group if any(model_matches(m, f) for m in t._ref_models() for f in families)]
        storages = _by_storage(group)
        if len(storages) < 2:
            continue
        keep = max(group, key=lambda t: (t.reference_count, -t._live().serial))
        others = [t for t in group if t._storage is not keep._storage]
        models = tuple(sorted({m for t in others for m in t._ref_models()} - set(keep._ref_models())))
        saved = sum(
            users[0].get_memory_usage() for key, users in storages.items() if key != id(keep._storage)
        )
        found.append(
            Recommendation(
                "share",
                (keep.name, *sorted(t.name for t in others)),
                models,
                saved,
                f"if these models can use one {tensor_type}: share_tensor_between_models({keep.name!r}, "
                f"{keep._ref_models()[0]!r}, {list(models)!r}) and release their own copies "
                "(contents differ: check the results)",
            )
        )
    return found


def recommend(tensors: Sequence[SharedTensor], analysis: SharingAnalysis) -> list[Recommendation]:
    """Concrete actions, largest saving first."""
    found: list[Recommendation] = []
    now = time.monotonic()
    freeable = [t for t in tensors if t._freeable(now)]
    if freeable:
        saved = _freeing(tensors, freeable)
        found.append(
            Recommendation(
                "free",
                tuple(sorted(t.name for t in freeable)),
                (),
                saved,
                f"optimize_memory_usage() frees these unreferenced tensors ({format_bytes(saved)})",
            )
        )
    for group in analysis.duplicates:
        found.append(
            Recommendation(
                "deduplicate",
                group.tensors,
                (),
                group.saves_bytes,
                "optimize_memory_usage() makes them share one storage (every name is kept)",
            )
        )
    idle_pins = [t for t in tensors if t.is_pinned and not t._ref_total and not t._views]
    if idle_pins:
        found.append(
            Recommendation(
                "unpin",
                tuple(sorted(t.name for t in idle_pins)),
                (),
                _freeing(tensors, idle_pins),
                "no model holds these pinned tensors: unpin() them, then optimize_memory_usage()",
            )
        )
    duplicate_names = {name for group in analysis.duplicates for name in group.tensors}
    found.extend(_share_candidates(tensors, duplicate_names))
    return sorted(found, key=lambda r: r.bytes_saved, reverse=True)
