"""Shape and layout ops against numpy, with views and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import accelerate_lab as al


@given(x=hnp.arrays("float32", hnp.array_shapes(max_dims=4, max_side=4)), data=st.data())
@settings(max_examples=40, deadline=None)
def test_transpose_and_reshape_match_numpy(x: np.ndarray, data: st.DataObject) -> None:
    perm = data.draw(st.permutations(range(x.ndim)))
    t = al.tensor(x)
    np.testing.assert_array_equal(al.transpose(t, perm).numpy(), x.transpose(perm))
    np.testing.assert_array_equal(t.T.numpy(), x.T)
    np.testing.assert_array_equal(al.reshape(t, (-1,)).numpy(), x.reshape(-1))
    np.testing.assert_array_equal(al.flatten(t).numpy(), x.reshape(-1))


def test_reshape_and_transpose_of_contiguous_data_are_views() -> None:
    t = al.arange(6, dtype="float32")
    r = t.reshape(2, 3)
    r[0, 0] = 5
    assert t.get(0) == 5
    assert np.shares_memory(t.transpose().numpy(), t.numpy())


def test_reshape_errors_name_the_shapes() -> None:
    with pytest.raises(al.ShapeError, match=r"\(2, 3\) \(6 elements\) to \(4,\)"):
        al.zeros([2, 3]).reshape(4)
    with pytest.raises(al.ShapeError, match="only one -1"):
        al.zeros([2, 3]).reshape(-1, -1)
    with pytest.raises(al.ShapeError, match="permutation"):
        al.transpose(al.zeros([2, 3]), (0, 0))


def test_flatten_a_range_of_axes() -> None:
    x = np.zeros((2, 3, 4, 5))
    assert al.flatten(al.tensor(x), 1, 2).shape == (2, 12, 5)
    assert al.flatten(al.tensor(x), -2).shape == (2, 3, 20)


def test_squeeze_and_unsqueeze() -> None:
    t = al.zeros([1, 3, 1, 2])
    assert al.squeeze(t).shape == (3, 2)
    assert al.squeeze(t, 2).shape == (1, 3, 2)
    assert al.unsqueeze(al.zeros([3, 2]), -1).shape == (3, 2, 1)
    assert al.unsqueeze(al.zeros([3, 2]), 0).shape == (1, 3, 2)
    with pytest.raises(al.ShapeError, match="size 3, not 1"):
        al.squeeze(t, 1)


@given(n=st.integers(1, 4), axis=st.integers(-2, 1))
@settings(max_examples=20, deadline=None)
def test_concat_and_stack_match_numpy(n: int, axis: int) -> None:
    rng = np.random.default_rng(n)
    parts = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(n)]
    np.testing.assert_array_equal(
        al.concat([al.tensor(p) for p in parts], axis).numpy(), np.concatenate(parts, axis)
    )
    np.testing.assert_array_equal(
        al.stack([al.tensor(p) for p in parts], axis).numpy(), np.stack(parts, axis)
    )


def test_concat_and_stack_errors() -> None:
    with pytest.raises(al.ShapeError, match=r"\(2, 3\), \(2, 4\)"):
        al.concat([al.zeros([2, 3]), al.zeros([2, 4])], 0)
    with pytest.raises(al.ShapeError, match="equal shapes"):
        al.stack([al.zeros([2]), al.zeros([3])])
    with pytest.raises(ValueError):
        al.concat([])


def test_slice_is_indexing_along_an_axis() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(al.slice(al.tensor(x), 1, 4, axis=2).numpy(), x[:, :, 1:4])
    np.testing.assert_array_equal(al.slice(al.tensor(x), 0, None, axis=1, step=2).numpy(), x[:, ::2])


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3))
@settings(max_examples=30, deadline=None)
def test_broadcast_shapes_and_broadcast_to_match_numpy(shapes: hnp.BroadcastableShapes) -> None:
    a, b = shapes.input_shapes
    assert al.broadcast_shapes(a, b) == np.broadcast_shapes(a, b)
    x = np.ones(a, np.float32)
    assert al.broadcast_to(al.tensor(x), shapes.result_shape).shape == shapes.result_shape


def test_broadcast_to_a_smaller_shape_fails() -> None:
    with pytest.raises(al.ShapeError, match=r"cannot broadcast \(2, 3\) to \(3,\)"):
        al.broadcast_to(al.zeros([2, 3]), (3,))
    with pytest.raises(al.ShapeError, match="axis 5 is out of range"):
        al.unsqueeze(al.zeros([2]), 5)
