"""The event history of a sharing manager, and the listeners that follow it (the memory dashboard).

History entries are kept as plain tuples in a bounded deque (the acquire/release path records one
per call) and become :class:`SharingEvent` objects only when read or sent to a listener. A batch (the
tensors one ``optimize_memory_usage`` frees) is still one entry per tensor, made by ``zip`` in C.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Literal, TypeAlias

__all__ = ["EventKind", "EventLog", "Listener", "SharingEvent"]

logger = logging.getLogger(__name__)

EventKind: TypeAlias = Literal["register", "acquire", "release", "view", "copy", "evict", "free", "dedupe"]


@dataclass(frozen=True, slots=True)
class SharingEvent:
    """One change to shared memory.

    ``tensor`` is the shared tensor concerned; ``other`` names the related one: the view created
    (``view``), the source of a copy (``copy``), or the tensor whose storage a duplicate now shares
    (``dedupe``). ``bytes`` is the tensor's size, the bytes a view covers (``view``), or the bytes
    released (``evict``, ``free``, ``dedupe``: 0 while another tensor still shares the storage).
    ``time`` is seconds since the epoch.
    """

    kind: EventKind
    tensor: str
    model: str | None
    bytes: int
    device: str
    time: float
    other: str | None = None


Listener: TypeAlias = Callable[[SharingEvent], None]
_Entry: TypeAlias = tuple[EventKind, str, "str | None", int, str, float, "str | None"]


class EventLog:
    """A bounded history of events plus subscribed listeners (callers hold the manager's lock)."""

    def __init__(self, max_events: int) -> None:
        self._history: deque[_Entry] = deque(maxlen=max_events)
        self._listeners: list[Listener] = []

    def record(
        self,
        kind: EventKind,
        tensor: str,
        model: str | None,
        nbytes: int,
        device: str,
        other: str | None = None,
    ) -> None:
        entry: _Entry = (kind, tensor, model, nbytes, device, time.time(), other)
        self._history.append(entry)
        if self._listeners:
            self._notify(entry)

    def record_batch(
        self,
        kind: EventKind,
        tensors: Sequence[str],
        nbytes: Sequence[int],
        devices: Sequence[str],
        others: Sequence[str] | None = None,
    ) -> None:
        """One ``kind`` event per tensor (no model), all at the same time, in the order given."""
        if not self._listeners and self._history.maxlen is not None and len(tensors) > self._history.maxlen:
            keep = slice(-self._history.maxlen, None)  # older ones would be dropped as soon as added
            tensors, nbytes, devices = tensors[keep], nbytes[keep], devices[keep]
            others = None if others is None else others[keep]
        entries: Iterable[_Entry] = zip(
            repeat(kind), tensors, repeat(None), nbytes, devices, repeat(time.time()), others or repeat(None)
        )
        if not self._listeners:
            self._history.extend(entries)
            return
        for entry in entries:
            self._history.append(entry)
            self._notify(entry)

    def _notify(self, entry: _Entry) -> None:
        event = SharingEvent(*entry)
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break memory management
                logger.exception("sharing event listener %r failed on %s", listener, event)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def events(self, kind: EventKind | None = None) -> list[SharingEvent]:
        return [SharingEvent(*entry) for entry in self._history if kind is None or entry[0] == kind]
