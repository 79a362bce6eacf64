"""scaled_dot_product_attention against a float64 reference: masks, causal, scale, batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelerate_lab as al


def reference(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> np.ndarray:
    scores = q @ np.swapaxes(k, -1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    out: np.ndarray = scores / scores.sum(-1, keepdims=True) @ v  # numpy types keepdims sums as Any
    return out


@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    length=st.integers(1, 6),
    source=st.integers(1, 6),
    mask_kind=st.sampled_from(["none", "bool", "float", "causal"]),
    scale=st.none() | st.floats(0.1, 2),
)
@settings(max_examples=40, deadline=None)
def test_attention_matches_reference(
    batch: list[int], length: int, source: int, mask_kind: str, scale: float | None
) -> None:
    rng = np.random.default_rng()
    q = rng.standard_normal((*batch, length, 4))
    k = rng.standard_normal((*batch, source, 4))
    v = rng.standard_normal((*batch, source, 3))
    mask: np.ndarray | None = None
    if mask_kind == "bool":
        mask = rng.random((length, source)) > 0.3
        mask[:, 0] = True  # every query sees at least one key
    elif mask_kind == "float":
        mask = rng.standard_normal((length, source))
    causal = mask_kind == "causal"
    if causal:
        source = length
        k, v = k[..., :length, :], v[..., :length, :]
    out = al.scaled_dot_product_attention(
        al.tensor(q), al.tensor(k), al.tensor(v), None if mask is None else al.tensor(mask), causal, scale
    )
    np.testing.assert_allclose(out.numpy(), reference(q, k, v, mask, causal, scale), rtol=1e-10, atol=1e-12)


def test_attention_shape_errors() -> None:
    with pytest.raises(al.ShapeError, match="same last dim"):
        al.scaled_dot_product_attention(al.zeros([2, 4]), al.zeros([2, 3]), al.zeros([2, 3]))
    with pytest.raises(al.ShapeError, match="rank >= 2"):
        al.scaled_dot_product_attention(al.zeros([4]), al.zeros([4]), al.zeros([4]))
