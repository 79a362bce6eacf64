"""Elementwise ops against numpy: broadcasting, dtype promotion, views, scalars and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelerate_lab as al
from tests.tensor.strategies import ALL_DTYPES, arrays, broadcast_pair, non_contiguous, shapes

BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.true_divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(pair=broadcast_pair(("float32", "float64", "int32", "int64")))
@settings(max_examples=25, deadline=None)
def test_binary_ops_broadcast_and_promote_like_numpy(name: str, pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    if name == "div":
        b = np.where(b == 0, 1, b).astype(b.dtype)
    out = getattr(al, name)(al.tensor(a), al.tensor(b))
    expected = BINARY[name](a, b)
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype.name
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


@given(a=arrays("float64", (3, 4), low=0.1, high=3), b=arrays("float64", (4,), low=-2, high=2))
@settings(max_examples=25, deadline=None)
def test_pow_matches_numpy(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(al.pow(al.tensor(a), al.tensor(b)).numpy(), a**b, rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "reference", "low"),
    [
        ("neg", np.negative, -5),
        ("exp", np.exp, -5),
        ("log", np.log, 0.125),
        ("sqrt", np.sqrt, 0),
        ("abs", np.abs, -5),
    ],
)
@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_unary_ops_match_numpy(name: str, reference: np.ufunc, low: float, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(("float16", "float32", "float64")))
    x = data.draw(arrays(dtype, data.draw(shapes), low=low, high=5))
    out = getattr(al, name)(al.tensor(x))
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), reference(x), rtol=2e-3 if dtype == "float16" else 1e-6)


@given(x=non_contiguous())
@settings(max_examples=20, deadline=None)
def test_ops_accept_non_contiguous_views(x: np.ndarray) -> None:
    t = al.tensor(np.ascontiguousarray(x.T)).T  # a transposed view of our own storage
    np.testing.assert_allclose((t * 2 + 1).numpy(), x * 2 + 1)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_python_scalars_are_weak_like_numpy(dtype: str) -> None:
    x = np.ones(3, dtype=dtype)
    for scalar in (2, 2.5, True):
        assert (al.tensor(x) * scalar).dtype == (x * scalar).dtype.name


def test_operators_and_reflected_operators() -> None:
    a, b = np.array([1.0, 2.0, 4.0], np.float32), np.array([3.0, 5.0, 7.0], np.float32)
    ta, tb = al.tensor(a), al.tensor(b)
    for got, want in [
        (ta + tb, a + b),
        (1 - ta, 1 - a),
        (2 * ta, 2 * a),
        (1 / ta, 1 / a),
        (ta**2, a**2),
        (2**ta, 2**a),
        (-ta, -a),
        (abs(-ta), a),
        (ta < tb, a < b),
        (ta >= 2, a >= 2),
        (ta == 2, a == 2),
        (ta != 2, a != 2),
    ]:
        np.testing.assert_array_equal(got.numpy(), want)


def test_numpy_array_on_the_left_defers_to_tensor() -> None:
    out = np.ones(3, np.float32) + al.tensor([1.0, 2.0, 3.0])
    assert isinstance(out, al.Tensor)
    assert out.tolist() == [2.0, 3.0, 4.0]


def test_where_broadcasts_condition_and_branches() -> None:
    cond = np.array([[True], [False]])
    a, b = np.arange(3.0), np.full((2, 3), -1.0)
    out = al.where(al.tensor(cond), al.tensor(a), al.tensor(b))
    np.testing.assert_array_equal(out.numpy(), np.where(cond, a, b))
    np.testing.assert_array_equal(al.where(al.tensor(cond), 1.0, 0.0).numpy(), np.where(cond, 1.0, 0.0))


def test_bad_broadcast_names_both_shapes() -> None:
    with pytest.raises(al.ShapeError, match=r"\(2, 3\) with \(4, 3\)"):
        al.add(al.zeros([2, 3]), al.zeros([4, 3]))
    with pytest.raises(ValueError):  # ShapeError is also a ValueError
        al.zeros([2]) * al.zeros([3])


def test_two_scalars_are_rejected() -> None:
    with pytest.raises(TypeError, match="at least one operand must be a Tensor"):
        al.add(1, 2)
