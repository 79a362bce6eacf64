"""The cpu device's own float32 kernels: erf and gelu (a rational fit), fused attention, layer norm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from accelerate_lab.hal import CpuDevice

GRID = np.linspace(-12, 12, 2_400_001, dtype=np.float32)  # steps of 1e-5, both tails included


def run(kernel: str, *inputs: np.ndarray | None, **params: object) -> np.ndarray:
    out = CpuDevice().run(kernel, list(inputs), params)
    assert isinstance(out, np.ndarray)
    return out


def test_float32_erf_is_within_1e7_of_float64_erf_on_a_dense_grid() -> None:
    out = run("erf", GRID)
    assert out.dtype == np.float32
    # measured: 9.5e-8 (the fit's 7.3e-8 plus the float32 rounding of the result)
    assert np.abs(out - erf(GRID.astype(np.float64))).max() <= 1e-7
    assert out[0] == -1 and out[-1] == 1


def test_float16_erf_rounds_the_float64_erf() -> None:
    x = GRID[::1000].astype(np.float16)
    out = run("erf", x)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, erf(x.astype(np.float64)), rtol=2**-11, atol=1e-7)


def test_float32_gelu_is_within_float32_rounding_of_float64_gelu() -> None:
    x = GRID.astype(np.float64)
    reference = 0.5 * x * (1 + erf(x / math.sqrt(2)))
    out = run("gelu", GRID, approximate="none")
    assert out.dtype == np.float32
    error = np.abs(out - reference)
    # measured: 1.9e-7 at |x| ~ 5.5 (the fit's error times x / 2), else the rounding of the result
    assert (error <= 1e-7 * np.maximum(1, np.abs(x)) + 2**-24 * np.abs(reference)).all()
    assert (out[x < -6] <= 0).all() and (out[x < -6] > -1e-7).all()  # the tail is 0, not the fit's overshoot


def test_float64_gelu_and_erf_stay_exact() -> None:
    x = np.random.default_rng().standard_normal(1000) * 4
    np.testing.assert_allclose(run("erf", x), erf(x), rtol=1e-15, atol=0)
    np.testing.assert_allclose(run("gelu", x, approximate="none"), 0.5 * x * (1 + erf(x / math.sqrt(2))))


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None, causal: bool
) -> np.ndarray:
    """The float64 reference: softmax(q k^T / sqrt(E) + mask) v."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + mask
    e = np.exp(scores - scores.max(-1, keepdims=True))
    out: np.ndarray = e / e.sum(-1, keepdims=True) @ v
    return out


def test_fused_attention_on_bert_shaped_strided_heads_with_padding() -> None:
    rng = np.random.default_rng()
    batch, length, heads, dim = 3, 40, 4, 16
    q, k, v = rng.standard_normal((batch, length, 3, heads, dim)).astype(np.float32).transpose(2, 0, 3, 1, 4)
    mask = np.ones((batch, 1, 1, length), bool)
    mask[1, ..., 25:] = False  # padding of the second sequence
    out = run("sdpa", q, k, v, mask, is_causal=False, scale=None)
    assert out.dtype == np.float32 and out.shape == (batch, heads, length, dim)
    np.testing.assert_allclose(out, attention(q, k, v, mask, False), rtol=1e-5, atol=1e-6)
    # the heads sit side by side in memory: merging them back is a reshape, not a copy
    merged = np.transpose(out, (0, 2, 1, 3))
    assert merged.flags.c_contiguous


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "row"])
@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_broadcasts_batches_and_masks(mask_kind: str, causal: bool) -> None:
    rng = np.random.default_rng()
    q = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    k = rng.standard_normal((3, 5, 8)).astype(np.float32)  # shared by the first batch axis
    v = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    masks = {
        "none": None,
        "bool": rng.random((2, 1, 5, 5)) > 0.3,
        "float": rng.standard_normal((5, 5)).astype(np.float32),
        "row": rng.random(5) > 0.3,  # one row of keys for every query
    }
    mask = masks[mask_kind]
    if mask is not None and mask.dtype == np.bool_:
        mask[..., 0] = True  # every query sees at least one key
    out = run("sdpa", q, k, v, mask, is_causal=causal, scale=None)
    assert out.shape == (2, 3, 5, 6)
    np.testing.assert_allclose(out, attention(q, k, v, mask, causal), rtol=1e-5, atol=1e-6)


def test_layer_norm_in_float16_computes_in_float32() -> None:
    rng = np.random.default_rng()
    x = (rng.standard_normal((6, 64)) * 3 + 1).astype(np.float16)
    w, b = rng.standard_normal(64).astype(np.float16), rng.standard_normal(64).astype(np.float16)
    out = run("layer_norm", x, w, b, eps=1e-5)
    x64 = x.astype(np.float64)
    reference = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5) * w + b
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, reference, rtol=4e-3, atol=4e-3)


def test_fused_attention_rows_far_below_the_slice_maximum_keep_their_softmax() -> None:
    # float64, so that the reference's precision is not the limit: scores of thousands on one row
    rng = np.random.default_rng()
    q, k, v = rng.standard_normal((2, 6, 8)), rng.standard_normal((2, 7, 8)), rng.standard_normal((2, 7, 5))
    q[0, 0] *= 2000  # one row's scores in the thousands: the others' exponentials would underflow
    offsets = np.zeros((6, 7))
    offsets[3] = -1000  # a whole row shifted down: its softmax is unchanged
    for mask in (None, offsets):
        out = run("sdpa", q, k, v, mask, is_causal=False, scale=None)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, attention(q, k, v, mask, False), rtol=1e-10, atol=1e-12)


def test_fused_attention_without_queries_is_empty() -> None:
    q, k, v = np.ones((2, 0, 4), np.float32), np.ones((2, 3, 4), np.float32), np.ones((2, 3, 5), np.float32)
    assert run("sdpa", q, k, v, None, is_causal=False, scale=None).shape == (2, 0, 5)


def test_softmax_of_integers_is_float64() -> None:
    out = run("softmax", np.array([[1, 2, 3]], np.int32), axis=1)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.exp([[1, 2, 3]]) / np.exp([1, 2, 3]).sum())
