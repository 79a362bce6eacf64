"""Memory accounting per storage device, with the budget each device may hold.

Counters follow PyTorch's ``torch.cuda.memory_stats``: bytes and allocation counts, each with
``current``, ``peak``, ``allocated`` (cumulative) and ``freed`` (cumulative), per device and for
``all`` devices together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MIB", "Ledger", "MemoryCounters", "format_bytes"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class MemoryCounters:
    """A snapshot of one device's counters (``budget_bytes`` is None when unlimited)."""

    current_bytes: int = 0
    peak_bytes: int = 0
    allocated_bytes: int = 0
    freed_bytes: int = 0
    current_allocations: int = 0
    peak_allocations: int = 0
    allocations: int = 0
    frees: int = 0
    evictions: int = 0
    budget_refusals: int = 0
    budget_bytes: int | None = None

    def as_memory_stats(self) -> dict[str, int]:
        """The counters under PyTorch's ``memory_stats`` key names."""
        return {
            "allocated_bytes.all.current": self.current_bytes,
            "allocated_bytes.all.peak": self.peak_bytes,
            "allocated_bytes.all.allocated": self.allocated_bytes,
            "allocated_bytes.all.freed": self.freed_bytes,
            "allocation.all.current": self.current_allocations,
            "allocation.all.peak": self.peak_allocations,
            "allocation.all.allocated": self.allocations,
            "allocation.all.freed": self.frees,
            "num_evictions": self.evictions,
            "num_ooms": self.budget_refusals,
        }


class _Counters:
    __slots__ = (
        "alloc_count",
        "allocated",
        "current",
        "current_count",
        "evictions",
        "freed",
        "frees",
        "peak",
        "peak_count",
        "refusals",
    )

    def __init__(self) -> None:
        self.current = self.peak = self.allocated = self.freed = 0
        self.current_count = self.peak_count = self.alloc_count = self.frees = 0
        self.evictions = self.refusals = 0

    def add(self, nbytes: int) -> None:
        self.current += nbytes
        self.allocated += nbytes
        self.peak = max(self.peak, self.current)
        self.current_count += 1
        self.alloc_count += 1
        self.peak_count = max(self.peak_count, self.current_count)

    def remove(self, nbytes: int, count: int, evicted: bool) -> None:
        self.current -= nbytes
        self.freed += nbytes
        self.current_count -= count
        self.frees += count
        self.evictions += count if evicted else 0

    def snapshot(self, budget: int | None) -> MemoryCounters:
        return MemoryCounters(
            self.current,
            self.peak,
            self.allocated,
            self.freed,
            self.current_count,
            self.peak_count,
            self.alloc_count,
            self.frees,
            self.evictions,
            self.refusals,
            budget,
        )


class Ledger:
    """Bytes held per device against an optional budget (one number for every device, or one per device)."""

    def __init__(self, max_memory_mb: float | Mapping[str, float] | None) -> None:
        if isinstance(max_memory_mb, Mapping):
            self._budgets: dict[str, int] | int | None = {d: _mib(mb) for d, mb in max_memory_mb.items()}
        else:
            self._budgets = None if max_memory_mb is None else _mib(max_memory_mb)
        self._devices: dict[str, _Counters] = {}
        self._all = _Counters()

    def budget(self, device: str) -> int | None:
        """The bytes ``device`` may hold, or None when unlimited."""
        if isinstance(self._budgets, dict):
            return self._budgets.get(device)
        return self._budgets

    def current(self, device: str) -> int:
        counters = self._devices.get(device)
        return 0 if counters is None else counters.current

    def allocated(self, device: str, nbytes: int) -> None:
        self._for(device).add(nbytes)
        self._all.add(nbytes)

    def freed(self, device: str, nbytes: int, *, count: int = 1, evicted: bool) -> None:
        """``count`` allocations of ``nbytes`` together were given back."""
        self._devices[device].remove(nbytes, count, evicted)
        self._all.remove(nbytes, count, evicted)

    def refused(self, device: str) -> None:
        self._for(device).refusals += 1
        self._all.refusals += 1

    def snapshot(self) -> dict[str, MemoryCounters]:
        """Counters per device, sorted by name."""
        return {name: self._devices[name].snapshot(self.budget(name)) for name in sorted(self._devices)}

    def total(self) -> MemoryCounters:
        """Counters of every device together."""
        budgets = [self.budget(name) for name in self._devices]
        known = [b for b in budgets if b is not None]
        return self._all.snapshot(sum(known) if known and len(known) == len(budgets) else None)

    def _for(self, device: str) -> _Counters:
        counters = self._devices.get(device)
        if counters is None:
            counters = self._devices[device] = _Counters()
        return counters


def _mib(mb: float) -> int:
    if mb < 0:
        raise ValueError(f"a memory budget cannot be negative, got {mb} MB")
    return int(mb * MIB)


def format_bytes(nbytes: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    if abs(nbytes) < 1024:
        return f"{nbytes:.0f} B"
    for unit in ("KiB", "MiB"):
        nbytes /= 1024
        if abs(nbytes) < 1024:
            return f"{nbytes:.1f} {unit}"
    return f"{nbytes / 1024:.1f} GiB"
