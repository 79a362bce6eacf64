"""MemoryDashboard in the kernel: live updates that do not flood the comm, and buttons that act."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import accelerate_lab as al
from accelerate_lab.widgets import MemoryDashboard


@pytest.fixture
def manager() -> al.TensorSharingManager:
    return al.TensorSharingManager(max_memory_mb=16)


@pytest.fixture
def dashboard(manager: al.TensorSharingManager) -> Iterator[MemoryDashboard]:
    dash = MemoryDashboard(manager, interval=0.1, poll=None)
    yield dash
    dash.close()


def _wait(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_dashboard_is_reachable_from_the_package_lazily() -> None:
    assert al.MemoryDashboard is MemoryDashboard


def test_registering_tensors_updates_the_view_without_a_refresh(
    manager: al.TensorSharingManager, dashboard: MemoryDashboard
) -> None:
    manager.register_shared_tensor("bert.emb", [128, 64], producer_model="bert")
    _wait(lambda: [r["name"] for r in dashboard.tensors] == ["bert.emb"])
    assert dashboard.models[0]["model"] == "bert" and dashboard.tensor_count == 1
    assert "bert.emb by bert" in dashboard.last_event


def test_a_burst_of_events_sends_a_handful_of_updates(
    manager: al.TensorSharingManager, dashboard: MemoryDashboard
) -> None:
    updates: list[int] = []
    dashboard.observe(lambda change: updates.append(len(change["new"])), names=["tensors"])
    started = time.monotonic()
    for i in range(500):
        manager.register_shared_tensor(f"w{i}", [8], producer_model="m")
    _wait(lambda: dashboard.tensor_count == 500)
    elapsed = time.monotonic() - started
    # at most one update per interval (0.1 s) while the burst lasted, plus the trailing one
    assert 1 <= len(updates) <= elapsed / 0.1 + 2, (len(updates), elapsed)


def test_optimize_button_frees_unreferenced_tensors_and_says_so(
    manager: al.TensorSharingManager, dashboard: MemoryDashboard
) -> None:
    manager.register_shared_tensor("kept", [16], producer_model="bert")
    manager.register_shared_tensor("orphan", [1024])
    dashboard._on_msg(dashboard, {"action": "optimize"}, [])
    assert "orphan" not in manager and "kept" in manager
    assert [r["name"] for r in dashboard.tensors] == ["kept"]
    assert dashboard.notice["kind"] == "info" and "freed 4.0 KiB" in dashboard.notice["text"]


def test_release_button_drops_a_models_references(
    manager: al.TensorSharingManager, dashboard: MemoryDashboard
) -> None:
    manager.register_shared_tensor("emb", [16], producer_model="bert", consumer_models=["clip"])
    dashboard._on_msg(dashboard, {"action": "release", "model": "clip", "manager": 0}, [])
    assert manager.get_shared_tensor("emb").references == {"bert": 1}
    assert [r["model"] for r in dashboard.models] == ["bert"]


def test_unpin_button_unpins_and_a_bad_request_shows_an_error(
    manager: al.TensorSharingManager, dashboard: MemoryDashboard
) -> None:
    manager.register_shared_tensor("pinned", [16]).pin()
    dashboard.refresh()
    assert dashboard.tensors[0]["pinned"] is True
    dashboard._on_msg(dashboard, {"action": "unpin", "tensor": "pinned"}, [])
    assert dashboard.tensors[0]["pinned"] is False
    dashboard._on_msg(dashboard, {"action": "unpin", "tensor": "missing"}, [])
    assert (
        dashboard.notice["kind"] == "error" and "no shared tensor named 'missing'" in dashboard.notice["text"]
    )


def test_recommendations_are_recomputed_at_a_bounded_rate(manager: al.TensorSharingManager) -> None:
    dash = MemoryDashboard(manager, interval=0.05, poll=None, recommend_every=60)
    try:
        manager.register_shared_tensor("orphan", [1024])
        _wait(lambda: dash.tensor_count == 1)
        time.sleep(0.2)
        assert dash.recommendations == []  # the first recommendations were computed at creation
        dash.refresh()  # an explicit refresh (the button) recomputes them at once
        assert dash.recommendations[0]["action"] == "free"
    finally:
        dash.close()


def test_closed_dashboard_stops_following_its_managers(manager: al.TensorSharingManager) -> None:
    dash = MemoryDashboard(manager, interval=0.05, poll=None)
    dash.close()
    manager.register_shared_tensor("late", [4])
    time.sleep(0.2)
    assert dash.tensor_count == 0


def test_watch_adds_a_second_manager_and_rows_name_it(dashboard: MemoryDashboard) -> None:
    other = al.TensorSharingManager()
    other.register_shared_tensor("x", [4], producer_model="llm")
    dashboard.watch(other)
    dashboard.refresh()
    assert dashboard.managers_count == 2 and dashboard.tensors[0]["manager"] == 1
