"""The core of a sharing manager: its tensors in least-recently-used order, their storages,
the budget each device may hold, and the event log. Every method runs under ``lock``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Literal

from accelerate_lab.errors import MemoryBudgetExceeded
from accelerate_lab.hal.device import Device
from accelerate_lab.sharing._events import EventKind, EventLog
from accelerate_lab.sharing._ledger import Ledger, format_bytes
from accelerate_lab.sharing._storage import Plan, Storage, release
from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["Pool", "why_held"]


class Pool:
    """Tensors by name (least recently used first), their storages and the per-device budget."""

    def __init__(
        self, max_memory_mb: float | Mapping[str, float] | None, grace_period_s: float, max_events: int
    ):
        self.lock = threading.RLock()
        self.tensors: OrderedDict[str, SharedTensor] = OrderedDict()
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
            tensor = SharedTensor(
                name,
                storage,
                self,
                producer_model=producer,
                tensor_type=tensor_type,
                grace_period_s=self.grace_period_s,
            )
            self.tensors[name] = tensor
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
        users_left: dict[int, int] = {}
        gain = 0
        now = time.monotonic()
        for tensor in self.tensors.values():
            storage = tensor._storage
            if storage is None or tensor.storage_type != device or not tensor._freeable(now):
                continue
            victims.append(tensor)
            users_left[id(storage)] = users_left.get(id(storage), storage.users) - 1
            gain += storage.nbytes if users_left[id(storage)] == 0 else 0
            if gain >= need:
                for victim in victims:
                    self.free(victim, "evict", f"evicted to make room for {name!r}")
                return
        self.ledger.refused(device)
        raise MemoryBudgetExceeded(self._refusal(device, nbytes, name, in_use, budget, gain))

    def freeable(self) -> list[SharedTensor]:
        """The tensors that could be freed now, least recently used first."""
        now = time.monotonic()
        return [t for t in self.tensors.values() if t._freeable(now)]

    def free(self, tensor: SharedTensor, kind: Literal["evict", "free"], fate: str) -> int:
        """Drop ``tensor`` and its storage (when no other tensor shares it); the bytes released."""
        storage = tensor._take_storage(fate)
        del self.tensors[tensor.name]
        released = self.unshare(storage, evicted=kind == "evict")
        self.log.record(kind, tensor.name, None, released, storage.device.name)
        return released

    def merge(self, duplicate: SharedTensor, keep: Storage, keep_name: str) -> int:
        """Let ``duplicate`` read ``keep`` (identical contents, read by ``keep_name``); the bytes released."""
        old = duplicate._share_storage(keep)
        released = self.unshare(old, evicted=False)
        self.log.record("dedupe", duplicate.name, None, released, old.device.name, keep_name)
        return released

    def unshare(self, storage: Storage, *, evicted: bool) -> int:
        storage.users -= 1
        if storage.users:
            return 0
        self.ledger.freed(storage.device.name, storage.nbytes, evicted=evicted)
        release(storage)
        return storage.nbytes

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
