"""SharedTensorView: zero-copy windows (flat ranges and boxes) that keep their parent alive."""

from __future__ import annotations

import numpy as np
import pytest

import accelerate_lab as al
from tests.sharing.conftest import CopyingDevice


@pytest.fixture
def st() -> al.SharedTensor:
    mgr = al.TensorSharingManager()
    return mgr.register_shared_tensor("w", data=np.arange(24, dtype=np.float32).reshape(4, 6))


def test_flat_view_is_a_numpy_view_of_the_parent(st: al.SharedTensor) -> None:
    view = st.create_view("rows12", 6, (2, 6))
    data = view.get_data()
    np.testing.assert_array_equal(data.numpy(), np.arange(24).reshape(4, 6)[1:3])
    assert np.shares_memory(data.numpy(), st.data.numpy())
    data[0, 0] = -1.0
    assert st.data.get(1, 0) == -1.0


def test_box_view_takes_one_start_and_extent_per_axis(st: al.SharedTensor) -> None:
    view = st.create_view("box", (1, 2), (2, 3))
    expected = np.arange(24).reshape(4, 6)[1:3, 2:5]
    np.testing.assert_array_equal(view.get_data().numpy(), expected)
    assert np.shares_memory(view.get_data().numpy(), st.data.numpy())
    assert view.shape == (2, 3) and view.get_memory_usage() == 24


@pytest.mark.parametrize(
    ("offset", "size"),
    [(20, 5), (-1, 2), ((0, 0), (5, 1)), ((0,), (1,)), ((3, 5), (1, 2)), ((0, 0), (1, 2, 3))],
)
def test_view_outside_the_parent_is_a_shape_error(st: al.SharedTensor, offset: object, size: object) -> None:
    with pytest.raises(al.ShapeError, match="view 'bad'"):
        st.create_view("bad", offset, size)  # type: ignore[arg-type]
    assert st.views == {}


def test_view_names_are_unique_while_open(st: al.SharedTensor) -> None:
    first = st.create_view("v", 0, 1)
    with pytest.raises(ValueError, match="already has an open view named 'v'"):
        st.create_view("v", 1, 1)
    first.close()
    st.create_view("v", 1, 1)


def test_view_keeps_its_parent_alive_until_closed() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=1)
    parent = mgr.register_shared_tensor("big", [200_000], dtype="uint8")
    with parent.create_view("head", 0, 10) as view:
        assert not parent.can_be_freed()
        with pytest.raises(al.MemoryBudgetExceeded):
            mgr.register_shared_tensor("other", [1_000_000], dtype="uint8")
        assert view.get_data().shape == (10,)
    assert view.is_closed and parent.views == {}
    with pytest.raises(al.TensorFreedError, match="view 'head' of 'big' is closed"):
        view.get_data()
    mgr.register_shared_tensor("other", [1_000_000], dtype="uint8")  # now the parent can be evicted
    assert parent.is_freed


def test_view_references_also_hold_the_parent(st: al.SharedTensor) -> None:
    view = st.create_view("v", 0, 3)
    view.acquire("t5")
    assert view.references == {"t5": 1} and st.references == {"t5": 1}
    assert view.release("t5") and not view.release("t5")
    assert st.reference_count == 0
    view.acquire("t5")
    view.acquire("llama")
    view.close()  # closing releases what the view held, on the parent too
    assert st.reference_count == 0 and view.reference_count == 0
    with pytest.raises(al.TensorFreedError):
        view.acquire("t5")


def test_views_work_on_a_device_with_separate_memory(gpu_like: CopyingDevice) -> None:
    mgr = al.TensorSharingManager()
    parent = mgr.register_shared_tensor("w", data=np.arange(10, dtype=np.int32), storage_type="gpu-like")
    view = parent.create_view("mid", 3, 4)
    assert view.get_data().device == "gpu-like" and view.get_data().tolist() == [3, 4, 5, 6]
