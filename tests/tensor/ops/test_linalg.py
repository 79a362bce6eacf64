"""matmul and linear against numpy: batches, broadcast batch dims, 1-D rules, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelerate_lab as al
from tests.tensor.strategies import non_contiguous


@st.composite
def matmul_operands(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = (draw(st.integers(1, 6)) for _ in range(3))
    batch_a = draw(st.lists(st.integers(1, 3), max_size=2))
    batch_b = [1 if draw(st.booleans()) else d for d in batch_a]
    batch_b = batch_b[len(batch_b) - draw(st.integers(0, len(batch_b))) :]  # broadcasting aligns on the right
    a = (k,) if draw(st.booleans()) and not batch_a else (*batch_a, m, k)
    b = (k,) if draw(st.booleans()) and not batch_b else (*batch_b, k, n)
    return a, b


@given(shapes=matmul_operands(), dtype=st.sampled_from(["float32", "float64"]))
@settings(max_examples=60, deadline=None)
def test_matmul_matches_numpy_including_1d_and_batch_broadcast(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], dtype: str
) -> None:
    rng = np.random.default_rng()
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    out = al.tensor(a) @ al.tensor(b)
    expected = a @ b
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_matmul_broadcasts_batch_dims() -> None:
    a = np.random.default_rng(1).standard_normal((2, 1, 3, 4))
    b = np.random.default_rng(2).standard_normal((5, 4, 2))
    np.testing.assert_allclose(al.matmul(al.tensor(a), al.tensor(b)).numpy(), a @ b, rtol=1e-12)


def test_matmul_shape_errors_name_the_shapes() -> None:
    with pytest.raises(al.ShapeError, match=r"\(2, 3\) by \(4, 5\): inner dimensions 3 and 4"):
        al.matmul(al.zeros([2, 3]), al.zeros([4, 5]))
    with pytest.raises(al.ShapeError, match="batch dimensions"):
        al.matmul(al.zeros([2, 2, 3]), al.zeros([4, 3, 1]))
    with pytest.raises(al.ShapeError, match="rank >= 1"):
        al.matmul(al.tensor(1.0), al.zeros([1]))


def test_linear_uses_pytorch_weight_layout() -> None:
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    np.testing.assert_allclose(al.linear(al.tensor(x), al.tensor(w), al.tensor(b)).numpy(), x @ w.T + b)
    np.testing.assert_allclose(al.linear(al.tensor(x), al.tensor(w)).numpy(), x @ w.T)


@given(x=non_contiguous("float64"))
@settings(max_examples=25, deadline=None)
def test_matmul_reads_non_contiguous_views(x: np.ndarray) -> None:
    t = al.tensor(np.ascontiguousarray(x.T)).T
    product = t @ al.matrix_transpose(t)
    np.testing.assert_allclose(product.numpy(), x @ np.swapaxes(x, -1, -2), rtol=1e-10, atol=1e-10)
