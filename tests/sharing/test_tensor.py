"""SharedTensor: per-model references, pinning, freeing rules, real bytes and real copies."""

from __future__ import annotations

import time

import numpy as np
import pytest

import accelerate_lab as al
from tests.sharing.conftest import CopyingDevice


@pytest.fixture
def mgr() -> al.TensorSharingManager:
    return al.TensorSharingManager(max_memory_mb=4)


def test_references_are_counted_per_model_and_never_go_negative(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor("emb", [4], producer_model="bert")
    st.acquire("clip")
    st.acquire("clip")
    assert st.references == {"bert": 1, "clip": 2} and st.reference_count == 3
    assert st.release("clip") and st.release("clip")
    assert not st.release("clip")  # a model that holds nothing: no change
    assert not st.release("never-acquired")
    assert st.references == {"bert": 1} and st.reference_count == 1


def test_can_be_freed_needs_no_references_no_pin_and_no_open_view(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor("emb", [4], producer_model="bert")
    assert not st.can_be_freed()
    st.release("bert")
    assert st.can_be_freed()
    st.pin()
    assert not st.can_be_freed() and st.is_pinned
    st.unpin()
    view = st.create_view("head", 0, 2)
    assert not st.can_be_freed()
    view.close()
    assert st.can_be_freed()


def test_grace_period_delays_freeing_after_last_use() -> None:
    mgr = al.TensorSharingManager(grace_period_s=0.2)
    st = mgr.register_shared_tensor("emb", [4], producer_model="bert")
    st.release("bert")
    assert not st.can_be_freed()
    time.sleep(0.25)
    assert st.can_be_freed()


@pytest.mark.parametrize("dtype", al.DTYPES)
def test_memory_usage_is_elements_times_dtype_size(mgr: al.TensorSharingManager, dtype: str) -> None:
    st = mgr.register_shared_tensor("t", [3, 5], dtype=dtype)
    assert st.get_memory_usage() == 15 * np.dtype(dtype).itemsize == st.data.nbytes
    assert st.data.dtype == dtype and st.data.shape == (3, 5)


def test_views_add_no_bytes(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor("t", [10])
    st.create_view("a", 0, 5)
    st.create_view("b", 2, 8)
    assert st.get_memory_usage() == 40
    assert mgr.memory_stats()["allocated_bytes.all.current"] == 40


def test_freed_tensor_is_unreadable_and_says_why(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor("emb", [4])
    assert mgr.free_shared_tensor("emb") == 16
    assert st.is_freed and st.get_memory_usage() == 0
    for use in (lambda: st.data, lambda: st.acquire("bert"), st.pin, lambda: st.create_view("v", 0, 1)):
        with pytest.raises(al.TensorFreedError, match="'emb' was freed by free_shared_tensor"):
            use()
    assert not st.release("bert")
    assert "freed" in repr(st)


def test_copy_to_same_device_is_a_separate_copy(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor(
        "w", data=np.arange(6, dtype=np.float32).reshape(2, 3), producer_model="vit"
    )
    copy = st.copy_to("cpu", name="w2")
    assert not np.shares_memory(copy.data.numpy(), st.data.numpy())
    np.testing.assert_array_equal(copy.data.numpy(), st.data.numpy())
    st.data[0, 0] = 100.0
    assert copy.data.get(0, 0) == 0.0
    assert copy.references == {"vit": 1} and "w2" in mgr
    assert mgr.memory_stats("cpu")["allocated_bytes.all.current"] == 48


def test_copy_to_another_device_moves_real_data_and_is_accounted_there(
    mgr: al.TensorSharingManager, gpu_like: CopyingDevice
) -> None:
    source = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float16)
    st = mgr.register_shared_tensor("w", data=source)
    copy = st.copy_to("gpu-like")
    assert copy.name == "w_gpu-like" and copy.storage_type == "gpu-like" and copy.data.device == "gpu-like"
    np.testing.assert_array_equal(copy.data.numpy(), source)
    assert mgr.memory_stats("gpu-like")["allocated_bytes.all.current"] == source.nbytes
    assert mgr.memory_stats("cpu")["allocated_bytes.all.current"] == source.nbytes
    assert [e.other for e in mgr.events("copy")] == ["w"]


def test_storage_memory_goes_back_to_its_device_when_freed(
    mgr: al.TensorSharingManager, gpu_like: CopyingDevice
) -> None:
    mgr.register_shared_tensor("owned", [8], storage_type="gpu-like")
    mgr.free_shared_tensor("owned")
    assert len(gpu_like.freed) == 1 and gpu_like.freed[0].shape == (8,)


def test_adopted_tensor_memory_stays_with_its_owner(
    mgr: al.TensorSharingManager, gpu_like: CopyingDevice
) -> None:
    weights = al.ones([8], device="gpu-like")
    mgr.register_shared_tensor("adopted", data=weights)
    mgr.free_shared_tensor("adopted")
    assert gpu_like.freed == [] and weights.tolist() == [1.0] * 8
