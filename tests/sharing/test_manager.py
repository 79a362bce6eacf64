"""TensorSharingManager: registering (also existing model weights), finding, sharing and releasing."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

import accelerate_lab as al
from tests.sharing.conftest import CopyingDevice


@pytest.fixture
def mgr() -> al.TensorSharingManager:
    return al.TensorSharingManager(max_memory_mb=8)


def test_register_allocates_zeros_and_gives_producer_and_consumers_a_reference(
    mgr: al.TensorSharingManager,
) -> None:
    st = mgr.register_shared_tensor("emb", [1, 768], producer_model="bert", consumer_models=["t5", "llama"])
    assert st.data.tolist() == np.zeros((1, 768)).tolist() and st.dtype == "float32"
    assert st.references == {"bert": 1, "t5": 1, "llama": 1}
    assert st.producer_model == "bert" and st.storage_type == "cpu"


def test_register_shares_a_model_tensor_without_copying(mgr: al.TensorSharingManager) -> None:
    weights = al.random([64, 32], seed=1)
    st = mgr.register_shared_tensor("bert.embeddings.word", data=weights, producer_model="bert")
    assert np.shares_memory(st.data.numpy(), weights.numpy())
    assert st.shape == (64, 32) and st.get_memory_usage() == weights.nbytes


def test_register_converts_or_copies_other_data(
    mgr: al.TensorSharingManager, gpu_like: CopyingDevice
) -> None:
    array = np.arange(6)
    as_float = mgr.register_shared_tensor("a", data=array, dtype="float16", shape=(2, 3))
    assert (
        as_float.dtype == "float16"
        and as_float.shape == (2, 3)
        and not np.shares_memory(as_float.data.numpy(), array)
    )
    listed = mgr.register_shared_tensor("b", data=[[1.0, 2.0]])
    assert listed.dtype == "float32" and listed.shape == (1, 2)
    moved = mgr.register_shared_tensor("c", data=al.tensor([1, 2, 3]), storage_type="gpu-like")
    assert moved.data.device == "gpu-like" and moved.data.tolist() == [1, 2, 3]
    with pytest.raises(al.ShapeError, match=r"does not fit shape \(4,\)"):
        mgr.register_shared_tensor("d", shape=(4,), data=array)


@pytest.mark.parametrize("order", ["C", "F", "strided tensor"])
def test_registered_data_is_stored_contiguous_whatever_the_source_order(
    mgr: al.TensorSharingManager, order: Literal["C", "F", "strided tensor"]
) -> None:
    source = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float32)
    data: object = (
        al.tensor(source).transpose()
        if order == "strided tensor"
        else np.array(source.T, order="F" if order == "F" else "C")
    )
    st = mgr.register_shared_tensor("t", data=data)
    stored = st.data.numpy()
    assert stored.flags.c_contiguous and st.shape == (7, 5)
    np.testing.assert_array_equal(stored, source.T)
    np.testing.assert_array_equal(st.create_view("row", 5, 5).get_data().numpy(), source.T[1])


def test_register_needs_a_free_name_and_a_shape_or_data(mgr: al.TensorSharingManager) -> None:
    mgr.register_shared_tensor("emb", [2])
    with pytest.raises(
        ValueError, match=r"'emb' is already registered; get it with get_shared_tensor\('emb'\)"
    ):
        mgr.register_shared_tensor("emb", [2])
    with pytest.raises(ValueError, match="needs a shape, or data"):
        mgr.register_shared_tensor("nothing")
    with pytest.raises(al.DeviceError, match="unknown device 'webgpu'"):
        mgr.register_shared_tensor("x", [2], storage_type="webgpu")


def test_get_shared_tensor_counts_hits_and_misses_and_acquires(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor("emb", [2])
    assert mgr.get_shared_tensor("emb") is st and st.reference_count == 0
    assert mgr.get_shared_tensor("emb", model_name="clip") is st and st.references == {"clip": 1}
    with pytest.raises(KeyError, match="no shared tensor named 'nope'; registered: emb"):
        mgr.get_shared_tensor("nope")
    stats = mgr.get_stats()
    assert (stats.cache_hits, stats.cache_misses, stats.hit_rate) == (2, 1, 2 / 3)


def test_share_between_models_gives_each_target_one_reference(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor("emb", [2], producer_model="bert")
    mgr.share_tensor_between_models("emb", "bert", ["t5", "llama"])
    mgr.share_tensor_between_models("emb", "t5", ["llama", "bart"])  # a holder may share on; no double count
    assert st.references == {"bert": 1, "t5": 1, "llama": 1, "bart": 1}
    with pytest.raises(ValueError, match="model 'vit' does not hold 'emb'"):
        mgr.share_tensor_between_models("emb", "vit", ["clip"])


def test_release_model_tensors_drops_all_its_references_and_closes_its_views(
    mgr: al.TensorSharingManager,
) -> None:
    a = mgr.register_shared_tensor("a", [4], producer_model="bert", consumer_models=["t5"])
    b = mgr.register_shared_tensor("b", [4], producer_model="bert")
    a.acquire("bert")
    own = mgr.create_tensor_view("a", "bert-head", 0, 2, model_name="bert")
    other = mgr.create_tensor_view("b", "t5-head", 0, 2, model_name="t5")
    assert mgr.release_model_tensors("bert") == 2
    assert a.references == {"t5": 1} and b.references == {"t5": 1}
    assert own.is_closed and not other.is_closed and a.views == {}
    assert mgr.release_model_tensors("bert") == 0
    assert {e.model for e in mgr.events("release")} == {"bert"}


def test_free_shared_tensor_refuses_tensors_in_use_and_says_why(mgr: al.TensorSharingManager) -> None:
    st = mgr.register_shared_tensor("emb", [4], producer_model="bert")
    st.pin()
    with pytest.raises(
        ValueError, match="'emb' cannot be freed: bert, pinned; release, unpin or close it first"
    ):
        mgr.free_shared_tensor("emb")
    assert "emb" in mgr and len(mgr) == 1


def test_repr_shows_tensors_and_budget(mgr: al.TensorSharingManager) -> None:
    mgr.register_shared_tensor("emb", [256])
    assert repr(mgr) == "TensorSharingManager(1 tensors; cpu: 1.0 KiB of 8.0 MiB)"
