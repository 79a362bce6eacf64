"""Coalesced updates from any thread: many pokes, one flush at most every ``interval`` seconds.

The dashboard's listeners poke on every sharing event (thousands per second when a model loads);
a daemon thread flushes at a bounded rate, so the comm carries a few messages a second at most,
while the kernel is busy (the thread runs beside the cell) and while it is idle. With ``poll``, it
also flushes every ``poll`` seconds without a poke (for counters that change without events).

>>> import time
>>> flushes = []
>>> live = Coalescer(flushes.append, interval=0.05, poll=None)
>>> for _ in range(1000):
...     live.poke()
>>> time.sleep(0.3); live.close()
>>> 1 <= len(flushes) <= 3 and flushes[0]
True
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable

__all__ = ["Coalescer"]

logger = logging.getLogger(__name__)

# stopped at exit, before the kernel's sockets close (atexit runs handlers registered later first)
_running: weakref.WeakSet[Coalescer] = weakref.WeakSet()


def _stop_all() -> None:
    for coalescer in list(_running):
        coalescer.close()


class Coalescer:
    """Calls ``flush(poked)`` on a daemon thread; ``poked``: whether ``poke()`` ran since the last flush."""

    def __init__(
        self, flush: Callable[[bool], None], interval: float = 0.25, poll: float | None = 2.0
    ) -> None:
        self.interval = interval
        self.poll = poll
        self._flush = flush
        self._poked = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="accelerate_lab-live", daemon=True)
        self._thread.start()
        if not _running:
            atexit.unregister(_stop_all)
            atexit.register(_stop_all)
        _running.add(self)

    def poke(self) -> None:
        """Ask for a flush soon (cheap: safe to call from a sharing listener, under its lock)."""
        self._poked = True
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (a pending flush is dropped)."""
        self._stop.set()
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=self.poll)
            # let a burst of pokes gather before flushing once
            self._stop.wait(max(0.0, last + self.interval - time.monotonic()))
            if self._stop.is_set():
                return
            self._wake.clear()
            poked, self._poked = self._poked, False
            try:
                self._flush(poked)
            except Exception:  # a failed refresh must not end live updates
                logger.exception("live update failed")
            last = time.monotonic()
