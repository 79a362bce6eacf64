"""optimize_memory_usage: freeing what can be freed, and one storage for identical contents."""

from __future__ import annotations

import numpy as np
import pytest

import accelerate_lab as al


@pytest.fixture
def mgr() -> al.TensorSharingManager:
    return al.TensorSharingManager()


def test_identical_contents_end_up_in_one_storage_with_both_names_kept(mgr: al.TensorSharingManager) -> None:
    table = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)  # > 4 KiB: digest path
    bert = mgr.register_shared_tensor("bert.emb", data=table.copy(), producer_model="bert")
    clip = mgr.register_shared_tensor("clip.emb", data=table.copy(), producer_model="clip")
    view = clip.create_view("first-row", 0, 16)
    result = mgr.optimize_memory_usage()
    assert result.merged_tensors == (("clip.emb", "bert.emb"),) and result.merged_bytes == table.nbytes
    assert (result.initial_bytes, result.final_bytes, result.reduction_percent) == (
        2 * table.nbytes,
        table.nbytes,
        50.0,
    )
    assert np.shares_memory(bert.data.numpy(), clip.data.numpy())
    np.testing.assert_array_equal(view.get_data().numpy(), table[0])
    assert clip.references == {"clip": 1} and mgr.get_tensor_memory_usage()[
        "clip.emb"
    ].shares_storage_with == ("bert.emb",)
    assert [(e.tensor, e.other, e.bytes) for e in mgr.events("dedupe")] == [
        ("clip.emb", "bert.emb", table.nbytes)
    ]


def test_equal_bytes_with_another_dtype_or_shape_are_not_duplicates(mgr: al.TensorSharingManager) -> None:
    for name, shape, dtype in [
        ("a", [4], "float32"),
        ("b", [4], "int32"),
        ("c", [2, 2], "float32"),
        ("d", [4], "float32"),
    ]:
        mgr.register_shared_tensor(name, shape, dtype=dtype, producer_model="m")
    assert mgr.optimize_memory_usage().merged_tensors == (("d", "a"),)


def test_nearly_equal_large_tensors_are_not_merged(mgr: al.TensorSharingManager) -> None:
    base = np.zeros(10_000, dtype=np.float32)
    other = base.copy()
    other[-1] = np.float32(1e-30)
    mgr.register_shared_tensor("a", data=base, producer_model="m")
    mgr.register_shared_tensor("b", data=other, producer_model="m")
    assert mgr.optimize_memory_usage().merged_tensors == ()


def test_optimize_frees_unreferenced_tensors_before_merging(mgr: al.TensorSharingManager) -> None:
    mgr.register_shared_tensor("held", [8], producer_model="bert")
    mgr.register_shared_tensor("idle-copy", [8])  # same zeros, but nobody holds it: freed, not merged
    mgr.register_shared_tensor("pinned", [3]).pin()
    result = mgr.optimize_memory_usage()
    assert result.freed_tensors == ("idle-copy",) and result.freed_bytes == 32 and result.merged_tensors == ()
    assert result.remaining_tensors == 2 and "idle-copy" not in mgr


def test_a_group_of_three_keeps_the_oldest_storage(mgr: al.TensorSharingManager) -> None:
    for name in ("first", "second", "third"):
        mgr.register_shared_tensor(name, data=np.ones(5, np.float16), producer_model=name)
    second = mgr.get_shared_tensor("second")
    second.data  # noqa: B018 (recency does not decide which storage stays)
    result = mgr.optimize_memory_usage()
    assert sorted(result.merged_tensors) == [("second", "first"), ("third", "first")]
    assert mgr.get_stats().memory["cpu"].current_bytes == 10
