"""``MemoryDashboard``: a live view of tensor-sharing managers and devices, with buttons that act.

It shows each device's budget gauge, the memory each model and device holds, a sortable table of the
shared tensors, memory over time (from the managers' event histories) and the recommended actions
with their savings; its buttons run ``optimize_memory_usage()``, ``release_model_tensors(model)`` and
``unpin()`` in the kernel. Sharing events poke a background thread that sends at most one update per
``interval`` seconds, during a running cell as well as while the kernel is idle; devices' counters are
re-read every ``poll`` seconds and after each cell, and sent only when they changed.

>>> import accelerate_lab as al
>>> mgr = al.TensorSharingManager(max_memory_mb=64)
>>> dash = al.MemoryDashboard(mgr)
>>> _ = mgr.register_shared_tensor("bert.emb", [1024, 384], producer_model="bert")
>>> dash.refresh(); [row["name"] for row in dash.tensors]
['bert.emb']
>>> dash.close()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anywidget
import traitlets

from accelerate_lab.sharing import OptimizationResult, SharingEvent, TensorSharingManager
from accelerate_lab.sharing._ledger import format_bytes
from accelerate_lab.widgets._live import Coalescer
from accelerate_lab.widgets._memory_state import (
    budget_rows,
    device_rows,
    event_summary,
    history_points,
    model_rows,
    recommendation_rows,
    tensor_rows,
)
from accelerate_lab.widgets._shell import on_post_run_cell
from accelerate_lab.widgets.browser_device import _bundle

__all__ = ["MemoryDashboard"]

ManagerArg = TensorSharingManager | Sequence[TensorSharingManager] | None


class MemoryDashboard(anywidget.AnyWidget):
    """A live memory view of ``manager`` (one `TensorSharingManager`, several, or None: devices only).

    ``interval``: the fewest seconds between two updates; ``poll``: how often device counters are
    re-read (None: only after cells and events); ``recommend_every``: the fewest seconds between two
    recomputations of the recommendations (they hash tensor contents to find duplicates).
    """

    _esm = _bundle("dashboard.js")
    _css = _bundle("dashboard.css")
    budgets = traitlets.List(traitlets.Dict()).tag(sync=True)
    models = traitlets.List(traitlets.Dict()).tag(sync=True)
    devices = traitlets.List(traitlets.Dict()).tag(sync=True)
    tensors = traitlets.List(traitlets.Dict()).tag(sync=True)
    tensor_count = traitlets.Int(0).tag(sync=True)
    history = traitlets.List(traitlets.Dict()).tag(sync=True)
    recommendations = traitlets.List(traitlets.Dict()).tag(sync=True)
    last_event = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Dict().tag(sync=True)
    managers_count = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        manager: ManagerArg = None,
        *,
        interval: float = 0.25,
        poll: float | None = 2.0,
        recommend_every: float = 3.0,
        extra_devices: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._managers: list[TensorSharingManager] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._extra_devices = tuple(extra_devices)
        self._lock = threading.RLock()
        self._recommend_every = recommend_every
        self._recommended_at = -float("inf")
        self._recommendations_stale = True
        self._notice_seq = 0
        self._pending_event: SharingEvent | None = None
        self._live = Coalescer(self._flush, interval=interval, poll=poll)
        self._forget_cell_hook = on_post_run_cell(self._live.poke)
        self.on_msg(self._on_msg)
        if isinstance(manager, TensorSharingManager):
            manager = [manager]
        for each in manager or ():
            self.watch(each)
        self.refresh()

    # ---- what it watches ------------------------------------------------------------------------
    @property
    def managers(self) -> tuple[TensorSharingManager, ...]:
        """The managers shown, in the order they were added."""
        return tuple(self._managers)

    def watch(self, manager: TensorSharingManager) -> None:
        """Show ``manager`` too (its events update the view from now on)."""
        if any(m is manager for m in self._managers):
            return
        with self._lock:
            self._managers.append(manager)
            self._unsubscribe.append(manager.subscribe(self._on_event))
            self.managers_count = len(self._managers)
            self._recommendations_stale = True
        self._live.poke()

    def _on_event(self, event: SharingEvent) -> None:
        # runs under the manager's lock on the thread that caused the event: only note it
        self._recommendations_stale = True
        self._pending_event = event
        self._live.poke()

    # ---- sending --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read everything now and send what changed (the buttons and ``poll`` call this too)."""
        self._recommendations_stale = True
        self._recommended_at = -float("inf")
        self._flush(True)

    def _flush(self, poked: bool) -> None:
        with self._lock:
            managers = list(self._managers)
            devices = device_rows(managers, self._extra_devices)
            if not poked:
                self.devices = devices
                self._maybe_recommend(managers)
                return
            tensors = tensor_rows(managers)
            event = self._pending_event
            with self.hold_sync():
                self.budgets = budget_rows(managers)
                self.models = model_rows(managers)
                self.devices = devices
                self.tensors = tensors
                self.tensor_count = sum(len(m) for m in managers)
                self.history = history_points(managers)
                if event is not None:
                    self.last_event = event_summary(event)
                self._maybe_recommend(managers)

    def _maybe_recommend(self, managers: list[TensorSharingManager]) -> None:
        now = time.monotonic()
        if self._recommendations_stale and now - self._recommended_at >= self._recommend_every:
            self._recommendations_stale = False
            self._recommended_at = now
            self.recommendations = recommendation_rows(managers)

    def _say(self, kind: str, text: str) -> None:
        self._notice_seq += 1
        self.notice = {"kind": kind, "text": text, "seq": self._notice_seq}

    # ---- actions (buttons call these; so can code) -----------------------------------------------
    def _manager(self, index: int) -> TensorSharingManager:
        if not 0 <= index < len(self._managers):
            raise IndexError(f"no manager #{index}: this dashboard shows {len(self._managers)}")
        return self._managers[index]

    def optimize(self, manager: int | None = None) -> list[OptimizationResult]:
        """``optimize_memory_usage()`` on one manager (by index) or all of them; what each did."""
        targets = self._managers if manager is None else [self._manager(manager)]
        results = [m.optimize_memory_usage() for m in targets]
        freed = sum(r.freed_bytes for r in results)
        merged = sum(r.merged_bytes for r in results)
        names = sum(len(r.freed_tensors) for r in results)
        merged_text = format_bytes(merged)
        self._say("info", f"optimized: freed {format_bytes(freed)} ({names} tensors), merged {merged_text}")
        self.refresh()
        return results

    def release_model(self, model: str, manager: int = 0) -> int:
        """``release_model_tensors(model)``: drop the references ``model`` holds; how many tensors it held."""
        released = self._manager(manager).release_model_tensors(model)
        self._say("info", f"released {released} tensors held by {model!r}; optimize to free them")
        self.refresh()
        return released

    def unpin(self, tensor: str, manager: int = 0) -> None:
        """Unpin ``tensor`` so that it can be freed once no model holds it."""
        self._manager(manager).get_shared_tensor(tensor).unpin()
        self._say("info", f"unpinned {tensor!r}")
        self.refresh()

    def _on_msg(self, _widget: object, content: dict[str, Any], _buffers: object) -> None:
        action = content.get("action")
        try:
            if action == "optimize":
                self.optimize()
            elif action == "release":
                self.release_model(str(content["model"]), int(content.get("manager", 0)))
            elif action == "unpin":
                self.unpin(str(content["tensor"]), int(content.get("manager", 0)))
            elif action == "refresh":
                self.refresh()
            else:
                raise ValueError(f"unknown dashboard action {action!r}")
        except (KeyError, ValueError, IndexError) as error:
            self._say("error", f"{action} failed: {error}")

    def close(self) -> None:
        """Stop the live updates and unsubscribe from the managers."""
        self._live.close()
        self._forget_cell_hook()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        super().close()

    def __repr__(self) -> str:
        held = sum(m.get_stats().current_bytes for m in self._managers)
        return f"MemoryDashboard({len(self._managers)} managers, {format_bytes(held)} shared)"
