"""The event history and its listeners (what the memory dashboard draws from)."""

from __future__ import annotations

import logging
import time

import pytest

import accelerate_lab as al


def test_every_change_is_an_event_with_time_model_and_bytes() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=1)
    start = time.time()
    st = mgr.register_shared_tensor("a", [1000], producer_model="bert")
    st.acquire("clip")
    st.release("clip")
    st.create_view("v", 0, 10).close()
    st.copy_to("cpu", name="b")
    mgr.release_model_tensors("bert")
    mgr.register_shared_tensor("c", [1_042_000], dtype="uint8")  # evicts a, the least recently used
    mgr.register_shared_tensor("d", [100], producer_model="m")
    mgr.register_shared_tensor("e", [100], producer_model="m")
    mgr.optimize_memory_usage()  # frees b and c, merges e into d
    kinds = [f"{e.kind}:{e.tensor}:{e.model or ''}" for e in mgr.events()]
    assert kinds == [
        *("register:a:bert", "acquire:a:bert", "acquire:a:clip", "release:a:clip", "view:a:"),
        *("copy:b:bert", "acquire:b:bert", "release:a:bert", "release:b:bert", "evict:a:", "register:c:"),
        *("register:d:m", "acquire:d:m", "register:e:m", "acquire:e:m", "free:b:", "free:c:", "dedupe:e:"),
    ]
    events = mgr.events()
    assert events[0].bytes == 4000 and events[0].device == "cpu" and start <= events[0].time <= time.time()
    assert mgr.events("evict")[0].bytes == 4000 and mgr.events("dedupe")[0].other == "d"


def test_listeners_receive_events_until_they_unsubscribe() -> None:
    mgr = al.TensorSharingManager()
    seen: list[al.SharingEvent] = []
    unsubscribe = mgr.subscribe(seen.append)
    st = mgr.register_shared_tensor("a", [2])
    st.acquire("bert")
    unsubscribe()
    unsubscribe()  # twice is harmless
    st.release("bert")
    assert [e.kind for e in seen] == ["register", "acquire"]


def test_a_failing_listener_is_logged_and_does_not_break_the_manager(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mgr = al.TensorSharingManager()

    def broken(event: al.SharingEvent) -> None:
        raise RuntimeError("widget gone")

    mgr.subscribe(broken)
    with caplog.at_level(logging.ERROR, logger="accelerate_lab.sharing._events"):
        mgr.register_shared_tensor("a", [2])
    assert "a" in mgr and "widget gone" in caplog.text


def test_history_is_bounded() -> None:
    mgr = al.TensorSharingManager(max_events=3)
    st = mgr.register_shared_tensor("a", [2])
    for _ in range(5):
        st.acquire("m")
    assert [e.kind for e in mgr.events()] == ["acquire"] * 3


def test_a_batch_of_frees_is_one_event_per_tensor_with_one_time_for_listeners_and_history() -> None:
    mgr = al.TensorSharingManager()
    seen: list[al.SharingEvent] = []
    for name in ("a", "b", "c"):
        mgr.register_shared_tensor(name, [4])
    mgr.register_shared_tensor("held", [4], producer_model="m")
    mgr.subscribe(seen.append)
    mgr.optimize_memory_usage()
    frees = mgr.events("free")
    assert [(e.tensor, e.bytes, e.device, e.model) for e in frees] == [(n, 16, "cpu", None) for n in "abc"]
    assert len({e.time for e in frees}) == 1 and seen == frees
    assert mgr.memory_stats()["allocation.all.freed"] == 3


def test_a_batch_longer_than_the_history_keeps_its_latest_events() -> None:
    mgr = al.TensorSharingManager(max_events=4)
    for i in range(10):
        mgr.register_shared_tensor(f"t{i}", [2])
    assert mgr.optimize_memory_usage().freed_tensors == tuple(f"t{i}" for i in range(10))
    assert [e.tensor for e in mgr.events()] == ["t6", "t7", "t8", "t9"]
