"""What the dashboard reads from managers and devices (no widget involved)."""

from __future__ import annotations

import numpy as np

import accelerate_lab as al
from accelerate_lab.widgets._memory_state import (
    budget_rows,
    device_rows,
    history_points,
    model_rows,
    recommendation_rows,
    tensor_rows,
)


def _int(value: object) -> int:
    """A number of bytes from the dashboard's JSON rows (typed ``object`` there)."""
    assert isinstance(value, int)
    return value


def _manager() -> al.TensorSharingManager:
    mgr = al.TensorSharingManager(max_memory_mb={"cpu": 4})
    mgr.register_shared_tensor("bert.emb", [256, 64], producer_model="bert", consumer_models=["clip"])
    mgr.register_shared_tensor("vit.patch", [32, 32], producer_model="vit")
    return mgr


def test_tensor_rows_list_consumers_apart_from_the_producer_largest_first() -> None:
    rows = tensor_rows([_manager()])
    assert [r["name"] for r in rows] == ["bert.emb", "vit.patch"]
    assert rows[0]["consumers"] == ["clip"] and rows[0]["producer"] == "bert"
    assert rows[0]["references"] == 2 and rows[0]["shape"] == [256, 64] and rows[0]["bytes"] == 256 * 64 * 4


def test_tensor_rows_keep_only_the_largest_when_limited() -> None:
    mgr = al.TensorSharingManager()
    for i in range(1, 6):
        mgr.register_shared_tensor(f"t{i}", [i * 10])
    assert [r["name"] for r in tensor_rows([mgr], limit=2)] == ["t5", "t4"]


def test_budget_rows_report_current_peak_and_budget_per_device() -> None:
    mgr = _manager()
    (row,) = budget_rows([mgr])
    assert row["device"] == "cpu" and row["budget"] == 4 * 1024 * 1024
    assert row["current"] == mgr.memory_stats("cpu")["allocated_bytes.all.current"]


def test_model_rows_split_exclusive_and_shared_bytes() -> None:
    rows = {r["model"]: r for r in model_rows([_manager()])}
    assert rows["clip"]["shared"] == rows["clip"]["bytes"] == 256 * 64 * 4
    assert rows["vit"]["exclusive"] == 32 * 32 * 4


def test_history_ends_at_the_bytes_held_now_and_steps_down_when_freed() -> None:
    mgr = _manager()
    mgr.release_model_tensors("vit")
    mgr.optimize_memory_usage()
    series = [_int(p["bytes"]) for p in history_points([mgr])]
    held = mgr.get_stats().current_bytes
    assert series[-1] == held == 256 * 64 * 4
    assert max(series) == held + 32 * 32 * 4
    assert series == sorted(series[:2]) + series[2:]  # rises while registering, then drops


def test_recommendations_carry_their_savings() -> None:
    mgr = al.TensorSharingManager()
    data = np.ones((64, 64), np.float32)
    mgr.register_shared_tensor("a", data=data, producer_model="m1")
    mgr.register_shared_tensor("b", data=data.copy(), producer_model="m2")
    (rec,) = recommendation_rows([mgr])
    assert rec["action"] == "deduplicate" and rec["bytes_saved"] == data.nbytes
    assert rec["tensors"] == ["a", "b"] and rec["more"] == 0


def test_device_rows_show_the_kernel_cpu_and_skip_devices_that_are_not_connected() -> None:
    rows = device_rows([_manager()])
    names = [r["name"] for r in rows]
    assert names[0] == "cpu" and "browser:webgpu" not in names
    assert rows[0]["shared"] == 256 * 64 * 4 + 32 * 32 * 4 and int(str(rows[0]["allocated"])) > 0
