"""The core of a sharing manager: its tensors, those no model holds in least-recently-used order
(the candidates for freeing), the storages by layout, the budget each device may hold, and the event
log. Every method runs under ``lock``.

Built for 100,000 tensors: both indexes are kept up to date as tensors and references come and go,
so freeing and eviction visit only unreferenced tensors and dedupe only layouts that several storages
share; plain dicts, as an ``OrderedDict`` costs a hash lookup per entry on every pass.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, eq
from typing import Literal

from accelerate_lab.errors import MemoryBudgetExceeded
from accelerate_lab.hal.device import Device
from accelerate_lab.sharing._dedupe import Duplicates
from accelerate_lab.sharing._events import EventKind, EventLog
from accelerate_lab.sharing._ledger import Ledger, format_bytes
from accelerate_lab.sharing._storage import Plan, Storage, release
from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["Pool", "why_held"]

# attribute reads that run in C over a batch of 100,000 tensors or storages
_NAME = attrgetter("name")
_DEVICE = attrgetter("storage_type")
_STORAGE_DEVICE = attrgetter("device.name")
_NBYTES = attrgetter("nbytes")
_READER = attrgetter("reader")


class Pool:
    """Tensors by name, the unreferenced ones least recently used first, live storages by layout
    (oldest first) and the per-device budget."""

    def __init__(
        self, max_memory_mb: float | Mapping[str, float] | None, grace_period_s: float, max_events: int
    ):
        self.lock = threading.RLock()
        self.tensors: dict[str, SharedTensor] = {}
        self.unreferenced: dict[str, SharedTensor] = {}  # SharedTensor._touch moves a tensor to the end
        self.layouts: dict[str, dict[Storage, None]] = {}
        self.ledger = Ledger(max_memory_mb)
        self.log = EventLog(max_events)
        self.grace_period_s = grace_period_s
        self._serial = itertools.count()

    def admit(
        self,
        name: str,
        device: Device,
        plan: Plan,
        *,
        producer: str | None,
        consumers: Iterable[str],
        tensor_type: str | None,
        kind: EventKind = "register",
        source: str | None = None,
    ) -> SharedTensor:
        """Make ``plan``'s storage within the budget and register it as ``name``."""
        with self.lock:
            if name in self.tensors:
                raise ValueError(
                    f"a shared tensor named {name!r} is already registered; get it with "
                    f"get_shared_tensor({name!r}) or pick another name"
                )
            self.make_room(device.name, plan.nbytes, name)
            storage = plan.make()
            storage.serial = next(self._serial)
            self.ledger.allocated(device.name, storage.nbytes)
            self.layouts.setdefault(storage.layout, {})[storage] = None
            tensor = SharedTensor(
                name,
                storage,
                self,
                producer_model=producer,
                tensor_type=tensor_type,
                grace_period_s=self.grace_period_s,
            )
            self.tensors[name] = self.unreferenced[name] = tensor
            self.log.record(kind, name, producer, storage.nbytes, device.name, source)
            for model in dict.fromkeys(m for m in (producer, *consumers) if m is not None):
                tensor.acquire(model)
            return tensor

    def make_room(self, device: str, nbytes: int, name: str) -> None:
        """Evict freeable tensors of ``device``, least recently used first, so that ``nbytes`` fit.

        Nothing is evicted unless that is enough; otherwise :class:`MemoryBudgetExceeded`.
        """
        budget = self.ledger.budget(device)
        in_use = self.ledger.current(device)
        if budget is None or in_use + nbytes <= budget:
            return
        need = in_use + nbytes - budget
        victims: list[SharedTensor] = []
        readers_left: dict[int, int] = {}
        gain = 0
        now = time.monotonic()
        for tensor in self.unreferenced.values():
            storage = tensor._storage
            if storage is None or tensor.storage_type != device or not tensor._freeable(now):
                continue
            victims.append(tensor)
            readers_left[id(storage)] = readers_left.get(id(storage), len(storage.readers)) - 1
            gain += storage.nbytes if readers_left[id(storage)] == 0 else 0
            if gain >= need:
                self.free(victims, "evict", f"evicted to make room for {name!r}")
                return
        self.ledger.refused(device)
        raise MemoryBudgetExceeded(self._refusal(device, nbytes, name, in_use, budget, gain))

    def freeable(self) -> list[SharedTensor]:
        """The tensors that could be freed now, least recently used first."""
        now = time.monotonic()
        return [tensor for tensor in self.unreferenced.values() if tensor._freeable(now)]

    def free(
        self, tensors: Sequence[SharedTensor], kind: Literal["evict", "free"], fate: str
    ) -> tuple[list[str], int]:
        """Drop ``tensors`` (each freeable) and the storages no other tensor reads; their names and
        the bytes released.

        One batch: an event per tensor, all stamped alike, and one ledger entry per device.
        """
        registry, unreferenced = self.tensors, self.unreferenced
        names = list(map(_NAME, tensors))
        released: list[int] = []
        emptied: list[Storage] = []
        everyone = len(tensors) == len(unreferenced)  # freeable ones are unreferenced: all of them?
        for tensor, name in zip(tensors, names, strict=True):
            del registry[name]
            if not everyone:
                del unreferenced[name]
            storage = tensor._take_storage(fate)
            if storage is None:  # another tensor still reads it
                released.append(0)
            else:
                released.append(storage.nbytes)
                emptied.append(storage)
        if everyone:
            unreferenced.clear()
        self._give_back(emptied, evicted=kind == "evict")
        self.log.record_batch(kind, names, released, list(map(_DEVICE, tensors)))
        return names, sum(released)

    def merge(self, duplicates: Duplicates) -> tuple[list[tuple[str, str]], int]:
        """Let the readers of each copy read its original instead (identical contents).

        Returns (tensor, tensor whose storage it now reads) pairs, with a ``dedupe`` event each, and
        the bytes released.
        """
        moved, targets, released = duplicates.moves()
        keepers = list(map(_NAME, map(_READER, targets)))  # before the moved join them
        for tensor, original in zip(moved, targets, strict=True):
            tensor._share_storage(original)
        self._give_back(duplicates.copies, evicted=False)
        names = list(map(_NAME, moved))
        self.log.record_batch("dedupe", names, released, list(map(_DEVICE, moved)), keepers)
        return list(zip(names, keepers, strict=True)), sum(released)

    def _give_back(self, storages: list[Storage], *, evicted: bool) -> None:
        """Return the memory of ``storages``, which no tensor reads any more, to their devices."""
        layouts = self.layouts
        for storage in storages:
            if storage.buffer is not None:  # adopted buffers stay with their owner: no call for those
                release(storage)
            same_layout = layouts[storage.layout]
            del same_layout[storage]
            if not same_layout:
                del layouts[storage.layout]
        devices = list(map(_STORAGE_DEVICE, storages))
        sizes = list(map(_NBYTES, storages))
        for device, count in Counter(devices).items():  # operator.eq: far cheaper to map than str.__eq__
            nbytes = sum(compress(sizes, map(eq, devices, repeat(device))))
            self.ledger.freed(device, nbytes, count=count, evicted=evicted)

    def _refusal(self, device: str, nbytes: int, name: str, in_use: int, budget: int, freeable: int) -> str:
        by_storage: dict[int, list[SharedTensor]] = {}
        for tensor in self.tensors.values():
            if tensor.storage_type == device:
                by_storage.setdefault(id(tensor._storage), []).append(tensor)
        largest = sorted(by_storage.values(), key=lambda users: users[0].get_memory_usage(), reverse=True)
        holders = "; ".join(
            f"{' = '.join(repr(t.name) for t in users)} {format_bytes(users[0].get_memory_usage())} "
            f"({'; '.join(why_held(t) for t in users)})"
            for users in largest[:3]
        )
        return (
            f"cannot fit {name!r} ({format_bytes(nbytes)}) on {device}: {format_bytes(in_use)} of the "
            f"{format_bytes(budget)} budget is in use and only {format_bytes(freeable)} can be freed. "
            f"Largest holders: {holders or 'none'}. Release models with release_model_tensors(model), "
            "unpin tensors, close views, or raise max_memory_mb."
        )


def why_held(tensor: SharedTensor) -> str:
    reasons = [f"{model} x{count}" if count > 1 else model for model, count in tensor.references.items()]
    if tensor.is_pinned:
        reasons.append("pinned")
    if tensor.views:
        reasons.append(f"{len(tensor.views)} open view(s)")
    if not reasons:
        reasons.append("freeable" if tensor.can_be_freed() else "used within its grace period")
    return ", ".join(reasons)
