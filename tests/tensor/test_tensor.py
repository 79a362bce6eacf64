"""The Tensor class: construction, dtypes, element access, views, interop and display."""

from __future__ import annotations

import numpy as np
import pytest

import accelerate_lab as al


def test_constructor_takes_flat_nested_or_numpy_data() -> None:
    flat = al.Tensor([2, 3], data=[1, 2, 3, 4, 5, 6])
    nested = al.Tensor([2, 3], data=[[1, 2, 3], [4, 5, 6]])
    from_numpy = al.Tensor((2, 3), data=np.arange(1, 7), dtype="int32")
    assert flat.tolist() == nested.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert from_numpy.dtype == "int32" and from_numpy.shape == (2, 3)
    assert al.Tensor([2, 2]).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_data_size_mismatch_names_both_sizes() -> None:
    with pytest.raises(ValueError, match=r"5 elements .* shape \(2, 3\) needs 6"):
        al.Tensor([2, 3], data=[1, 2, 3, 4, 5])


@pytest.mark.parametrize("dtype", al.DTYPES)
def test_every_dtype_round_trips(dtype: str) -> None:
    t = al.Tensor([3], data=[0, 1, 1], dtype=dtype)
    assert t.dtype == dtype
    assert t.numpy().dtype == np.dtype(dtype)
    assert t.nbytes == 3 * np.dtype(dtype).itemsize


def test_unsupported_dtype_lists_the_supported_ones() -> None:
    with pytest.raises(TypeError, match="float32, float64, float16"):
        al.Tensor([1], dtype="complex64")
    with pytest.raises(TypeError):
        al.tensor(["a", "b"])


def test_tensor_infers_float32_from_python_floats_and_keeps_numpy_dtypes() -> None:
    assert al.tensor([1.5]).dtype == "float32"
    assert al.tensor([1]).dtype == "int64"
    assert al.tensor([True]).dtype == "bool"
    assert al.tensor(np.zeros(2)).dtype == "float64"
    assert al.tensor(np.zeros(2, np.float16)).dtype == "float16"


def test_properties() -> None:
    t = al.zeros([2, 3, 4])
    assert (t.shape, t.size, t.rank, t.dtype, t.device) == ((2, 3, 4), 24, 3, "float32", "cpu")


def test_get_and_set_with_negative_indices() -> None:
    t = al.arange(6).reshape(2, 3)
    assert t.get(-1, -1) == 5
    t.set(42, -2, 1)
    assert t.get(0, 1) == 42


@pytest.mark.parametrize("idx", [(2, 0), (0, 3), (-3, 0), (0, -4)])
def test_get_out_of_bounds_is_an_index_error(idx: tuple[int, int]) -> None:
    with pytest.raises(IndexError, match="out of bounds"):
        al.zeros([2, 3]).get(*idx)


def test_get_needs_one_index_per_axis() -> None:
    with pytest.raises(IndexError, match="2 indices"):
        al.zeros([2, 3]).get(0)


def test_basic_indexing_returns_views_that_share_storage() -> None:
    base = al.arange(12, dtype="float32").reshape(3, 4)
    view = base[1:, ::2]
    np.testing.assert_array_equal(view.numpy(), np.arange(12.0).reshape(3, 4)[1:, ::2])
    view[0, 0] = -1
    assert base.get(1, 0) == -1
    base[..., -1] = 7
    assert base[:, -1].tolist() == [7.0, 7.0, 7.0]
    assert base[None, 0].shape == (1, 4)


def test_advanced_indexing_is_refused_with_advice() -> None:
    with pytest.raises(TypeError, match=r"al\.embedding"):
        al.zeros([3])[[0, 1]]


def test_zeros_ones_clone_keep_shape_and_dtype() -> None:
    t = al.tensor(np.arange(4, dtype=np.int32))
    assert t.zeros().tolist() == [0, 0, 0, 0] and t.zeros().dtype == "int32"
    assert t.ones().tolist() == [1, 1, 1, 1]
    c = t.clone()
    c[0] = 9
    assert t.get(0) == 0


def test_numpy_array_protocol_and_dlpack() -> None:
    t = al.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert np.asarray(t).sum() == 10
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(np.from_dlpack(t), t.numpy())
    assert t.__dlpack_device__() == (1, 0)


def test_to_same_device_is_identity_and_unknown_device_is_clear() -> None:
    t = al.ones([2])
    assert t.to("cpu") is t
    with pytest.raises(al.DeviceError, match="unknown device 'tpu'"):
        t.to("tpu")


def test_repr_is_compact_and_html_is_escaped() -> None:
    text = repr(al.arange(1000, dtype="float32"))
    assert "shape=(1000,)" in text and "dtype=float32" in text and "device=cpu" in text
    assert "..." in text and len(text) < 200
    html = al.ones([2, 2])._repr_html_()
    assert "<pre" in html and "shape=(2, 2)" in html


def test_item_and_conversions() -> None:
    assert al.tensor([2.5]).item() == 2.5
    assert float(al.tensor(3)) == 3.0 and int(al.tensor([4.0])) == 4
    with pytest.raises(ValueError, match="one element"):
        al.ones([2]).item()
    assert len(al.zeros([5, 2])) == 5


def test_creation_functions() -> None:
    assert al.full([2], 3.5).tolist() == [3.5, 3.5]
    assert al.arange(3).tolist() == [0, 1, 2]
    assert al.arange(0, 1, 0.5).dtype == "float32"
    r = al.random([100], low=-2, high=-1, seed=7)
    assert (r.numpy() >= -2).all() and (r.numpy() < -1).all()
    np.testing.assert_array_equal(r.numpy(), al.random([100], low=-2, high=-1, seed=7).numpy())
    with pytest.raises(ValueError, match="low < high"):
        al.random([2], low=1, high=1)
    with pytest.raises(ValueError, match="step"):
        al.arange(0, 3, 0)


def test_only_float_tensors_require_grad() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        al.Tensor([2], dtype="int32", requires_grad=True)
