"""The priority queue: ordering, bounds, timeouts, cancellation, and slot conservation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerate_lab.api import Priority, QueueFull, QueueTimeout, RequestQueue


def test_free_slots_are_taken_at_once() -> None:
    q = RequestQueue(max_concurrent=2, max_size=0)
    q.acquire()
    q.acquire()
    assert q.active == 2
    with pytest.raises(QueueFull, match="queue is full"):
        q.acquire()
    q.release()
    q.release()
    assert q.active == 0


def test_try_acquire_takes_a_free_slot_and_never_waits() -> None:
    q = RequestQueue(max_concurrent=1, max_size=10)
    assert q.try_acquire() and q.active == 1
    started = time.monotonic()
    assert not q.try_acquire()  # full: refused at once, and nothing joins the queue
    assert time.monotonic() - started < 0.5 and q.active == 1 and q.waiting == 0
    q.release()
    assert q.active == 0 and q.try_acquire()
    q.release()


async def test_waiters_run_by_priority_then_arrival() -> None:
    q = RequestQueue(max_concurrent=1, max_size=10)
    await q.aacquire()
    order: list[str] = []

    async def worker(label: str, priority: Priority) -> None:
        async with q.aslot(priority, timeout=5):
            order.append(label)

    tasks = []
    for label, prio in [
        ("low1", Priority.LOW),
        ("normal1", Priority.NORMAL),
        ("high1", Priority.HIGH),
        ("low2", Priority.LOW),
        ("high2", Priority.HIGH),
    ]:
        tasks.append(asyncio.create_task(worker(label, prio)))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert q.waiting == 5
    q.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["high1", "high2", "normal1", "low1", "low2"]
    assert q.active == 0 and q.waiting == 0


def test_threads_wait_by_priority() -> None:
    q = RequestQueue(max_concurrent=1, max_size=10)
    q.acquire()
    order: list[str] = []
    lock = threading.Lock()

    def worker(label: str, priority: Priority) -> None:
        with q.slot(priority, timeout=5), lock:
            order.append(label)

    threads = []
    for label, prio in [("low", Priority.LOW), ("high", Priority.HIGH), ("normal", Priority.NORMAL)]:
        t = threading.Thread(target=worker, args=(label, prio))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while q.waiting < len(threads) and time.monotonic() < deadline:
            time.sleep(0.001)
    q.release()
    for t in threads:
        t.join(5)
    assert order == ["high", "normal", "low"]


def test_full_queue_is_a_typed_error_not_a_drop() -> None:
    q = RequestQueue(max_concurrent=1, max_size=1)
    q.acquire()
    waiter = threading.Thread(target=lambda: q.acquire(timeout=5))
    waiter.start()
    deadline = time.monotonic() + 5
    while q.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    with pytest.raises(QueueFull):
        q.acquire(timeout=1)
    assert q.rejected == 1
    q.release()
    waiter.join(5)
    assert q.active == 1 and q.waiting == 0


def test_waiting_past_the_timeout_raises_and_leaves_the_queue() -> None:
    q = RequestQueue(max_concurrent=1, max_size=5)
    q.acquire()
    started = time.monotonic()
    with pytest.raises(QueueTimeout):
        q.acquire(timeout=0.05)
    assert time.monotonic() - started < 2
    assert q.waiting == 0


async def test_cancelling_a_waiter_frees_its_place() -> None:
    q = RequestQueue(max_concurrent=1, max_size=5)
    await q.aacquire()
    task = asyncio.create_task(q.aacquire(timeout=5))
    await asyncio.sleep(0.01)
    assert q.waiting == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert q.waiting == 0
    q.release()
    assert q.active == 0


async def test_cancelling_a_holder_frees_its_slot() -> None:
    q = RequestQueue(max_concurrent=1, max_size=5)
    hold = asyncio.Event()

    async def holder() -> None:
        async with q.aslot():
            hold.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(holder())
    await asyncio.wait_for(hold.wait(), 5)
    assert q.active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert q.active == 0
    await asyncio.wait_for(q.aacquire(), 1)


async def test_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    q = RequestQueue(max_concurrent=1, max_size=5)
    await q.aacquire()
    first = asyncio.create_task(q.aacquire(timeout=5))
    second = asyncio.create_task(q.aacquire(timeout=5))
    await asyncio.sleep(0.01)
    q.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs: the slot must reach `second`
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 2)
    assert q.active == 1 and q.waiting == 0


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 4),
    ops=st.lists(
        st.tuples(st.sampled_from(["acquire", "release"]), st.sampled_from(list(Priority))), max_size=40
    ),
)
def test_slots_are_conserved(limit: int, ops: list[tuple[str, Priority]]) -> None:
    """Model check: active never exceeds the limit and equals acquisitions minus releases."""
    q = RequestQueue(max_concurrent=limit, max_size=0)
    held = 0
    for op, prio in ops:
        if op == "acquire":
            if held < limit:
                q.acquire(prio, timeout=0)
                held += 1
            else:
                with pytest.raises(QueueFull):
                    q.acquire(prio, timeout=0)
        elif held:
            q.release()
            held -= 1
        assert q.active == held <= limit
