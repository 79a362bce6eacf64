"""Activations, softmax, layer_norm and embedding against float64 references."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelerate_lab as al
from tests.tensor.strategies import arrays

_erf = np.vectorize(math.erf)
REFERENCES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "silu": lambda x: x / (1 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
@given(x=arrays("float32", (3, 7), low=-30, high=30))
@settings(max_examples=20, deadline=None)
def test_activations_match_float64_reference(name: str, x: np.ndarray) -> None:
    out = getattr(al, name)(al.tensor(x))
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.numpy(), REFERENCES[name](x.astype(np.float64)), rtol=2e-6, atol=1e-6)


def test_gelu_tanh_form_matches_its_formula() -> None:
    x = np.linspace(-6, 6, 101)
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    np.testing.assert_allclose(
        al.gelu(al.tensor(x), approximate="tanh").numpy(), 0.5 * x * (1 + np.tanh(inner))
    )
    with pytest.raises(ValueError, match="approximate"):
        al.gelu(al.tensor(x), approximate="erf")  # type: ignore[arg-type]


def test_sigmoid_does_not_overflow() -> None:
    with np.errstate(over="raise"):
        out = al.sigmoid(al.tensor([-1000.0, 1000.0])).numpy()
    np.testing.assert_array_equal(out, [0.0, 1.0])


@given(x=arrays("float32", (4, 6), low=-1000, high=1000), axis=st.sampled_from([0, 1, -1]))
@settings(max_examples=30, deadline=None)
def test_softmax_and_log_softmax_are_stable_for_large_logits(x: np.ndarray, axis: int) -> None:
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=axis, keepdims=True)
    log_ref = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    np.testing.assert_allclose(al.softmax(al.tensor(x), axis).numpy(), np.exp(log_ref), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(al.log_softmax(al.tensor(x), axis).numpy(), log_ref, rtol=1e-5, atol=1e-4)


@given(x=arrays("float32", (3, 8)), affine=st.booleans())
@settings(max_examples=30, deadline=None)
def test_layer_norm_matches_reference(x: np.ndarray, affine: bool) -> None:
    rng = np.random.default_rng()
    w = rng.standard_normal(8).astype(np.float32) if affine else None
    b = rng.standard_normal(8).astype(np.float32) if affine else None
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    if affine:
        ref = ref * w + b
    out = al.layer_norm(
        al.tensor(x), None if w is None else al.tensor(w), None if b is None else al.tensor(b)
    )
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_embedding_gathers_rows_and_checks_ids() -> None:
    table = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    ids = np.array([[1, 9], [0, 1]])
    np.testing.assert_array_equal(al.embedding(al.tensor(ids), al.tensor(table)).numpy(), table[ids])
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        al.embedding(al.tensor([10]), al.tensor(table))
    with pytest.raises(TypeError, match="integers"):
        al.embedding(al.tensor([1.0]), al.tensor(table))
