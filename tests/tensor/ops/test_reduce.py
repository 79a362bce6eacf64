"""Reductions against numpy over random shapes, axes and keepdims."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import accelerate_lab as al
from tests.tensor.strategies import arrays, non_contiguous

REDUCTIONS: dict[str, Callable[..., Any]] = {  # numpy's: a scalar or an array
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "var": np.var,
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_reductions_match_numpy(name: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(("float32", "float64", "int32", "int64")))
    x = data.draw(arrays(dtype, data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))))
    axis = data.draw(st.none() | hnp.valid_tuple_axes(x.ndim, min_size=1) | st.integers(-x.ndim, x.ndim - 1))
    keepdims = data.draw(st.booleans())
    out = getattr(al, name)(al.tensor(x), axis=axis, keepdims=keepdims)
    expected = REDUCTIONS[name](x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    assert out.dtype == np.asarray(expected).dtype.name
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


@given(x=arrays("float64", (3, 4, 5)), axis=st.sampled_from([None, 0, 1, -1]), keepdims=st.booleans())
@settings(max_examples=30, deadline=None)
def test_argmax_matches_numpy(x: np.ndarray, axis: int | None, keepdims: bool) -> None:
    out = al.argmax(al.tensor(x), axis=axis, keepdims=keepdims)
    expected = np.argmax(x, axis=axis, keepdims=keepdims)
    assert out.dtype == "int64"
    np.testing.assert_array_equal(out.numpy(), expected)


def test_var_with_correction_is_numpys_ddof() -> None:
    x = np.random.default_rng(0).standard_normal((4, 6))
    np.testing.assert_allclose(al.var(al.tensor(x), axis=1, correction=1).numpy(), np.var(x, axis=1, ddof=1))


def test_reduction_errors() -> None:
    with pytest.raises(al.ShapeError, match="axis 2 is out of range"):
        al.sum(al.zeros([2, 3]), axis=2)
    with pytest.raises(al.ShapeError, match="repeated axis"):
        al.sum(al.zeros([2, 3]), axis=(0, -2))
    with pytest.raises(al.ShapeError, match="empty"):
        al.max(al.zeros([0, 3]), axis=0)


@given(x=non_contiguous("float64"), keepdims=st.booleans())
@settings(max_examples=25, deadline=None)
def test_reductions_read_non_contiguous_views(x: np.ndarray, keepdims: bool) -> None:
    t = al.tensor(np.ascontiguousarray(x.T)).T
    for name, reference in REDUCTIONS.items():
        got = getattr(al, name)(t, axis=-1, keepdims=keepdims).numpy()
        np.testing.assert_allclose(got, reference(x, axis=-1, keepdims=keepdims), rtol=1e-10, atol=1e-12)
