"""optimize_memory_usage: freeing what can be freed, and one storage for identical contents."""

from __future__ import annotations

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal import register_device
from accelerate_lab.hal.device import Buffer
from tests.sharing.conftest import CopyingDevice


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


def test_a_shared_storage_that_became_a_copy_moves_with_all_its_readers(mgr: al.TensorSharingManager) -> None:
    zeros = mgr.register_shared_tensor("zeros", data=np.zeros(8, np.float32), producer_model="m")
    ones = mgr.register_shared_tensor("ones", data=np.ones(8, np.float32), producer_model="m")
    mgr.register_shared_tensor("ones-again", data=np.ones(8, np.float32), producer_model="m")
    assert mgr.optimize_memory_usage().merged_tensors == (("ones-again", "ones"),)
    ones.data.numpy()[:] = 0  # written through: "ones" and "ones-again" now hold what "zeros" holds
    result = mgr.optimize_memory_usage()
    assert sorted(result.merged_tensors) == [("ones", "zeros"), ("ones-again", "zeros")]
    assert result.merged_bytes == 32
    assert [e.bytes for e in mgr.events("dedupe")][-2:] == [0, 32]  # released with its last reader
    assert mgr.get_stats().memory["cpu"].current_allocations == 1
    assert np.shares_memory(zeros.data.numpy(), mgr.get_shared_tensor("ones-again").data.numpy())


def test_copies_of_several_layouts_are_merged_oldest_first(mgr: al.TensorSharingManager) -> None:
    for name, data in [
        ("small", np.ones(4, np.float32)),
        ("large", np.ones(2000, np.float64)),  # > 4 KiB: digest path
        ("large-copy", np.ones(2000, np.float64)),
        ("small-copy", np.ones(4, np.float32)),
        ("int", np.ones(4, np.int32)),
        ("int-copy", np.ones(4, np.int32)),
    ]:
        mgr.register_shared_tensor(name, data=data, producer_model="m")
    groups = mgr.analyze_sharing_opportunities().duplicates
    assert [g.tensors for g in groups] == [
        ("large", "large-copy"),
        ("small", "small-copy"),
        ("int", "int-copy"),
    ]
    result = mgr.optimize_memory_usage()
    assert result.merged_tensors == (("large-copy", "large"), ("small-copy", "small"), ("int-copy", "int"))


def test_empty_tensors_of_one_layout_share_one_storage(mgr: al.TensorSharingManager) -> None:
    mgr.register_shared_tensor("a", [0, 3], producer_model="m")
    mgr.register_shared_tensor("b", [0, 3], producer_model="m")
    result = mgr.optimize_memory_usage()
    assert result.merged_tensors == (("b", "a"),) and result.merged_bytes == 0
    assert mgr.get_stats().memory["cpu"].current_allocations == 1


class _PendingDevice(CopyingDevice):
    """A device some of whose buffers cannot be read on the host yet (like a browser's before it answers)."""

    def __init__(self) -> None:
        super().__init__("pending")
        self.pending: list[np.ndarray] = []

    def download(self, buffer: Buffer) -> np.ndarray:
        if any(np.shares_memory(buffer, p) for p in self.pending):
            raise al.DeviceError("not read back yet")
        return super().download(buffer)


def test_storages_not_readable_on_the_host_are_left_out(mgr: al.TensorSharingManager) -> None:
    device = _PendingDevice()
    register_device("pending", lambda: device)
    first, *_ = [
        mgr.register_shared_tensor(
            name, data=np.ones(4, np.float32), storage_type="pending", producer_model="m"
        )
        for name in ("first", "second", "third")
    ]
    buffer = first._storage.buffer if first._storage else None
    assert isinstance(buffer, np.ndarray)
    device.pending.append(buffer)
    assert mgr.optimize_memory_usage().merged_tensors == (("third", "second"),)
    device.pending.clear()
    assert mgr.optimize_memory_usage().merged_tensors == (("second", "first"), ("third", "first"))


@pytest.mark.parametrize("shape", [(), (3, 4), (2, 3, 700)])  # a scalar, small, and > 4 KiB (digest path)
def test_copies_of_any_rank_are_merged_whatever_the_source_order(
    mgr: al.TensorSharingManager, shape: tuple[int, ...]
) -> None:
    data = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    other = data + np.float32(1)
    a = mgr.register_shared_tensor("a", data=data, producer_model="m")
    mgr.register_shared_tensor("b", data=np.asfortranarray(data).reshape(shape), producer_model="m")
    mgr.register_shared_tensor("c", data=other, producer_model="m")
    view = mgr.create_tensor_view("b", "all", 0, data.size)
    result = mgr.optimize_memory_usage()
    assert result.merged_tensors == (("b", "a"),) and result.merged_bytes == data.nbytes
    np.testing.assert_array_equal(mgr.get_shared_tensor("b").data.numpy(), data)
    assert np.shares_memory(view.get_data().numpy(), a.data.numpy())
    np.testing.assert_array_equal(mgr.get_shared_tensor("c").data.numpy(), other)


def test_a_merged_storage_freed_in_one_batch_is_released_once_with_its_last_reader(
    mgr: al.TensorSharingManager,
) -> None:
    data = np.random.default_rng(2).standard_normal(6).astype(np.float32)
    for name in ("a", "b", "c"):
        mgr.register_shared_tensor(name, data=data, producer_model="m")
    mgr.register_shared_tensor("kept", data=data + np.float32(1), producer_model="m")
    assert mgr.optimize_memory_usage().merged_tensors == (("b", "a"), ("c", "a"))
    mgr.release_model_tensors("m")
    mgr.get_shared_tensor("c", "n")  # "c" keeps the storage "a" and "b" read
    result = mgr.optimize_memory_usage()
    assert result.freed_tensors == ("a", "b", "kept") and result.freed_bytes == data.nbytes
    assert [e.bytes for e in mgr.events("free")] == [0, 0, data.nbytes]
    np.testing.assert_array_equal(mgr.get_shared_tensor("c").data.numpy(), data)
    for name in ("x", "y"):  # both readers of one storage in one batch: released once, by the last
        mgr.register_shared_tensor(name, data=data * 2, producer_model="m")
    assert mgr.optimize_memory_usage().merged_tensors == (("y", "x"),)
    mgr.release_model_tensors("n")
    mgr.release_model_tensors("m")
    result = mgr.optimize_memory_usage()
    assert result.freed_tensors == ("c", "x", "y") and result.freed_bytes == 2 * data.nbytes
    assert [e.bytes for e in mgr.events("free")][-3:] == [data.nbytes, 0, data.nbytes]
    assert mgr.get_stats().memory["cpu"].current_bytes == 0


def test_the_readers_of_one_storage_leave_in_any_order(mgr: al.TensorSharingManager) -> None:
    data = np.random.default_rng(3).standard_normal(8).astype(np.float32)
    for i in range(6):
        mgr.register_shared_tensor(f"t{i}", data=data, producer_model="m")
    assert len(mgr.optimize_memory_usage().merged_tensors) == 5  # one storage, six readers
    for name in ("t1", "t4"):
        mgr.share_tensor_between_models(name, "m", ["n"])
    mgr.release_model_tensors("m")
    for name in ("t2", "t3", "t5", "t0"):  # a middle one, the next, the newest, the oldest: it stays
        assert mgr.free_shared_tensor(name) == 0
    mgr.register_shared_tensor("late", data=data, producer_model="m")
    assert mgr.optimize_memory_usage().merged_tensors == (("late", "t1"),)  # t1: the oldest left
    mgr.release_model_tensors("n")
    assert [mgr.free_shared_tensor(name) for name in ("t4", "t1")] == [0, 0]
    np.testing.assert_array_equal(mgr.get_shared_tensor("late").data.numpy(), data)
    mgr.release_model_tensors("m")
    assert mgr.free_shared_tensor("late") == data.nbytes
    assert mgr.get_stats().memory["cpu"].current_bytes == 0
