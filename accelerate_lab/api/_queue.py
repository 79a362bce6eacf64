"""A bounded priority queue with a concurrency limit, shared by threads and asyncio tasks.

At most `max_concurrent` requests run at once; up to `max_size` more wait, HIGH before NORMAL before
LOW and first-come first-served within a priority. A request beyond that is refused with `QueueFull`
(never dropped silently); one that waits past its timeout gets `QueueTimeout`; a cancelled waiter
leaves the queue, and a slot handed to a task that is being cancelled is passed on, never leaked.

>>> from accelerate_lab.api import Priority, RequestQueue
>>> q = RequestQueue(max_concurrent=2, max_size=10)
>>> with q.slot(Priority.HIGH, timeout=1.0):
...     q.active
1
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field

from accelerate_lab.api._errors import QueueFull, QueueTimeout
from accelerate_lab.api._types import Priority

__all__ = ["RequestQueue"]


@dataclass(eq=False)
class _Waiter:
    event: threading.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    granted: bool = False


@dataclass(order=True)
class _Entry:
    priority: int
    seq: int
    waiter: _Waiter = field(compare=False)


class RequestQueue:
    """At most `max_concurrent` requests at once and `max_size` waiting, by priority then arrival."""

    def __init__(self, max_concurrent: int = 16, max_size: int = 1024) -> None:
        self.max_concurrent = max_concurrent
        self.max_size = max_size
        self._lock = threading.Lock()
        self._active = 0
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self.rejected = 0

    @property
    def active(self) -> int:
        """Requests holding a slot now."""
        return self._active

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._heap)

    def __repr__(self) -> str:
        return (
            f"RequestQueue(active={self._active}/{self.max_concurrent}, "
            f"waiting={self.waiting}/{self.max_size})"
        )

    def _take_free(self) -> bool:
        """Under the lock: takes a free slot if one is free and nobody waits for it."""
        if self._active < self.max_concurrent and not self._heap:
            self._active += 1
            return True
        return False

    def try_acquire(self) -> bool:
        """Takes a slot only if one is free and nobody waits, never waiting: the uncontended fast path,
        which allocates nothing (the caller must `release` the slot it got)."""
        with self._lock:
            return self._take_free()

    def _enqueue(self, priority: Priority, waiter: _Waiter) -> None:
        """Under the lock: joins the queue, or QueueFull if it has no room."""
        if len(self._heap) >= self.max_size:
            self.rejected += 1
            raise QueueFull(
                f"request queue is full ({len(self._heap)} waiting, {self._active} running); "
                "raise max_queue_size or max_concurrent_requests, or retry later"
            )
        heapq.heappush(self._heap, _Entry(int(priority), next(self._seq), waiter))

    def _forget(self, waiter: _Waiter) -> None:
        self._heap = [e for e in self._heap if e.waiter is not waiter]
        heapq.heapify(self._heap)

    def acquire(self, priority: Priority = Priority.NORMAL, timeout: float | None = None) -> None:
        with self._lock:
            if self._take_free():  # a free slot: nothing to allocate or wait for
                return
            event = threading.Event()
            waiter = _Waiter(event=event)
            self._enqueue(priority, waiter)
        if event.wait(timeout):
            return
        with self._lock:
            if waiter.granted:  # handed over between the timeout and the lock
                return
            self._forget(waiter)
        raise QueueTimeout(f"waited {timeout} s for a request slot ({self.max_concurrent} busy)")

    async def aacquire(self, priority: Priority = Priority.NORMAL, timeout: float | None = None) -> None:
        with self._lock:
            if self._take_free():  # a free slot: nothing to allocate or wait for
                return
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            waiter = _Waiter(loop=loop, future=future)
            self._enqueue(priority, waiter)
        try:
            # asyncio.timeout, not wait_for: wait_for (3.11) swallows a cancel once the future is done.
            async with asyncio.timeout(timeout):
                await future
        except BaseException as exc:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._forget(waiter)
            if granted:
                if isinstance(exc, TimeoutError):
                    return  # the slot arrived as the timeout fired: keep it
                self.release()  # cancelled after the hand-over: pass the slot on
            if isinstance(exc, TimeoutError):
                raise QueueTimeout(
                    f"waited {timeout} s for a request slot ({self.max_concurrent} busy)"
                ) from None
            raise

    def release(self) -> None:
        """Frees a slot: hands it to the first waiter (by priority, then arrival) or returns it."""
        with self._lock:
            while self._heap:
                waiter = heapq.heappop(self._heap).waiter
                if self._wake(waiter):
                    return
            self._active -= 1

    @staticmethod
    def _wake(waiter: _Waiter) -> bool:
        if waiter.event is not None:
            waiter.granted = True
            waiter.event.set()
            return True
        assert waiter.loop is not None and waiter.future is not None
        future = waiter.future
        if future.done() or waiter.loop.is_closed():
            return False

        def grant() -> None:
            if not future.done():
                future.set_result(None)

        waiter.granted = True
        try:
            waiter.loop.call_soon_threadsafe(grant)
        except RuntimeError:  # loop closed meanwhile
            waiter.granted = False
            return False
        return True

    def slot(
        self, priority: Priority = Priority.NORMAL, timeout: float | None = None
    ) -> AbstractContextManager[None]:
        """`with q.slot(...):` holds a slot for the block (waiting for one as `acquire` does)."""
        return _Slot(self, priority, timeout)

    def aslot(
        self, priority: Priority = Priority.NORMAL, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """`async with q.aslot(...):` holds a slot for the block (waiting as `aacquire` does)."""
        return _Slot(self, priority, timeout)


class _Slot:
    # A class rather than @contextmanager: every request enters one, and this costs no generator.
    __slots__ = ("_priority", "_queue", "_timeout")

    def __init__(self, queue: RequestQueue, priority: Priority, timeout: float | None) -> None:
        self._queue = queue
        self._priority = priority
        self._timeout = timeout

    def __enter__(self) -> None:
        self._queue.acquire(self._priority, self._timeout)

    def __exit__(self, *exc: object) -> None:
        self._queue.release()

    async def __aenter__(self) -> None:
        await self._queue.aacquire(self._priority, self._timeout)

    async def __aexit__(self, *exc: object) -> None:
        self._queue.release()
