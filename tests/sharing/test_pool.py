"""The budget: evicting least-recently-used freeable tensors, and refusing with the whole picture."""

from __future__ import annotations

import pytest

import accelerate_lab as al
from accelerate_lab.sharing._ledger import MIB
from tests.sharing.conftest import CopyingDevice


def _mib(mgr: al.TensorSharingManager, name: str, mib: float, **kw: object) -> al.SharedTensor:
    return mgr.register_shared_tensor(name, [int(mib * MIB)], dtype="uint8", **kw)  # type: ignore[arg-type]


def test_allocation_over_budget_evicts_least_recently_used_freeable_first() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=3)
    old, mid, new = (_mib(mgr, name, 1) for name in ("old", "mid", "new"))
    mid.data  # noqa: B018 (a read counts as a use)
    old.acquire("bert")
    old.release("bert")  # ... and so do acquire and release
    _mib(mgr, "next", 1)
    assert new.is_freed and not old.is_freed and not mid.is_freed
    assert [(e.kind, e.tensor, e.bytes) for e in mgr.events("evict")] == [("evict", "new", MIB)]
    with pytest.raises(al.TensorFreedError, match="'new' was evicted to make room for 'next'"):
        new.data  # noqa: B018
    assert mgr.memory_stats()["num_evictions"] == 1


def test_refusal_evicts_nothing_and_names_request_use_budget_and_holders() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=4)
    _mib(mgr, "bert.emb", 2, producer_model="bert", consumer_models=["clip"])
    pinned = _mib(mgr, "vit.patch", 1)
    pinned.pin()
    spare = _mib(mgr, "spare", 0.5)
    with pytest.raises(al.MemoryBudgetExceeded) as caught:
        _mib(mgr, "whisper.enc", 2)
    message = str(caught.value)
    assert "cannot fit 'whisper.enc' (2.0 MiB) on cpu: 3.5 MiB of the 4.0 MiB budget is in use" in message
    assert "only 512.0 KiB can be freed" in message
    assert (
        "'bert.emb' 2.0 MiB (bert, clip); 'vit.patch' 1.0 MiB (pinned); 'spare' 512.0 KiB (freeable)"
        in message
    )
    assert "raise max_memory_mb" in message
    assert isinstance(caught.value, MemoryError)
    assert not spare.is_freed and "whisper.enc" not in mgr
    assert mgr.memory_stats()["num_ooms"] == 1


def test_a_tensor_larger_than_the_budget_is_refused() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=1)
    with pytest.raises(al.MemoryBudgetExceeded, match=r"2.0 MiB\) on cpu: 0 B of the 1.0 MiB budget"):
        _mib(mgr, "huge", 2)


def test_budget_is_kept_per_storage_device(gpu_like: CopyingDevice) -> None:
    mgr = al.TensorSharingManager(max_memory_mb={"cpu": 2, "gpu-like": 1})
    cpu = _mib(mgr, "cpu-a", 1.5)
    gpu = _mib(mgr, "gpu-a", 1, storage_type="gpu-like")
    _mib(mgr, "gpu-b", 1, storage_type="gpu-like")  # evicts gpu-a, never the cpu tensor
    assert gpu.is_freed and not cpu.is_freed
    mgr.get_shared_tensor("gpu-b").pin()
    with pytest.raises(al.MemoryBudgetExceeded, match="on gpu-like"):
        cpu.copy_to("gpu-like")
    assert mgr.get_stats().memory["gpu-like"].budget_bytes == MIB


def test_devices_without_a_budget_are_unlimited(gpu_like: CopyingDevice) -> None:
    mgr = al.TensorSharingManager(max_memory_mb={"cpu": 1})
    _mib(mgr, "big", 4, storage_type="gpu-like")
    assert mgr.memory_stats("gpu-like")["allocated_bytes.all.current"] == 4 * MIB
    with pytest.raises(ValueError, match="cannot be negative"):
        al.TensorSharingManager(max_memory_mb=-1)


def test_storage_shared_after_dedupe_is_released_only_with_its_last_tensor() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=2)
    a = _mib(mgr, "a", 1)
    b = _mib(mgr, "b", 1)
    mgr.optimize_memory_usage()  # both freeable: freed, not merged
    assert a.is_freed and b.is_freed
    a, b = _mib(mgr, "a", 1, producer_model="m"), _mib(mgr, "b", 1, producer_model="m")
    assert mgr.optimize_memory_usage().merged_bytes == MIB
    mgr.release_model_tensors("m")
    _mib(mgr, "c", 1)  # 1 MiB in use, room for 1 MiB: nothing evicted
    assert not a.is_freed and not b.is_freed
    _mib(mgr, "d", 1)  # needs a's and b's shared storage: both go
    assert a.is_freed and b.is_freed


def test_refusal_lists_tensors_that_share_one_storage_together() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=2)
    _mib(mgr, "embed", 1, producer_model="llama")
    _mib(mgr, "lm_head", 1, producer_model="llama")
    mgr.optimize_memory_usage()
    with pytest.raises(
        al.MemoryBudgetExceeded, match=r"Largest holders: 'embed' = 'lm_head' 1.0 MiB \(llama; llama\)"
    ):
        _mib(mgr, "big", 1.5)
