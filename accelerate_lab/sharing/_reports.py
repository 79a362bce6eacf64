"""The results a sharing manager reports: frozen dataclasses, printable in a notebook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from accelerate_lab.sharing._ledger import MemoryCounters

__all__ = [
    "Action",
    "DuplicateGroup",
    "ModelUsage",
    "OptimizationResult",
    "Recommendation",
    "SharingAnalysis",
    "SharingStats",
    "TensorUsage",
]

Action: TypeAlias = Literal["free", "deduplicate", "unpin", "share"]


@dataclass(frozen=True)
class TensorUsage:
    """One shared tensor: its storage bytes (shared storage counted once), holders and views."""

    bytes: int
    shape: tuple[int, ...]
    dtype: str
    storage_type: str
    reference_count: int
    references: Mapping[str, int]
    producer: str | None
    tensor_type: str | None
    pinned: bool
    views: tuple[str, ...]
    shares_storage_with: tuple[str, ...]


@dataclass(frozen=True)
class ModelUsage:
    """The memory one model holds: ``bytes`` of distinct storages, split into exclusive and shared."""

    bytes: int
    exclusive_bytes: int
    shared_bytes: int
    tensors: tuple[str, ...]


@dataclass(frozen=True)
class DuplicateGroup:
    """Tensors whose separate storages hold identical bytes; merging them saves ``saves_bytes``."""

    tensors: tuple[str, ...]
    storage_type: str
    bytes_each: int
    saves_bytes: int


@dataclass(frozen=True)
class SharingAnalysis:
    """Models that could share each tensor type (two or more active ones), and duplicate contents."""

    by_tensor_type: Mapping[str, tuple[str, ...]]
    duplicates: tuple[DuplicateGroup, ...]


@dataclass(frozen=True)
class Recommendation:
    """One concrete action: what to do (``how``), to which tensors and models, and the bytes it frees."""

    action: Action
    tensors: tuple[str, ...]
    models: tuple[str, ...]
    bytes_saved: int
    how: str


@dataclass(frozen=True)
class OptimizationResult:
    """What ``optimize_memory_usage`` did: freed tensors, merged duplicates ``(duplicate, kept)``."""

    initial_bytes: int
    final_bytes: int
    freed_bytes: int
    merged_bytes: int
    freed_tensors: tuple[str, ...]
    merged_tensors: tuple[tuple[str, str], ...]
    reduction_percent: float
    remaining_tensors: int


@dataclass(frozen=True)
class SharingStats:
    """Counts, cache hits, and bytes: held now, ``unshared_bytes`` if no storage were shared (each model
    its own copy of every tensor it holds, each name its own storage), and the difference saved.

    ``memory`` has PyTorch-style counters per storage device (see ``memory_stats``).
    """

    tensors: int
    views: int
    models: tuple[str, ...]
    cache_hits: int
    cache_misses: int
    current_bytes: int
    unshared_bytes: int
    saved_bytes: int
    memory: Mapping[str, MemoryCounters] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else 0.0
