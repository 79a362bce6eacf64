"""The cpu device's own float32 kernels: erf and gelu (a rational fit), fused attention, layer norm,
softmax; each test runs twice, with the compiled kernels (``csrc/nn.c``) and with numpy's alone."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
from scipy.special import erf

from accelerate_lab.hal import CpuDevice, cpu, cpu_nn

GRID = np.linspace(-12, 12, 2_400_001, dtype=np.float32)  # steps of 1e-5, both tails included


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which kernels the cpu device runs: the compiled ones, or numpy's (the fallback without a compiler)."""
    if request.param == "numpy":
        monkeypatch.setattr(cpu_nn, "library", lambda: None)
    else:
        request.getfixturevalue("compiled_kernels")
    return str(request.param)


def numpy_only(kernel: str, *inputs: np.ndarray | None, **params: object) -> np.ndarray:
    """``kernel`` run with numpy's kernels, whichever the test runs with."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cpu_nn, "library", lambda: None)
        return run(kernel, *inputs, **params)


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


def test_attention_of_one_query_reads_strided_heads_in_place() -> None:
    # a decoding step: one query against cached keys and values whose heads are strided views
    rng = np.random.default_rng()
    batch, source, heads, dim = 2, 300, 6, 16
    q = rng.standard_normal((batch, heads, 1, dim)).astype(np.float32)
    k, v = rng.standard_normal((2, batch, source, heads, dim)).astype(np.float32).transpose(0, 1, 3, 2, 4)
    out = run("sdpa", q, k, v, None, is_causal=False, scale=None)
    np.testing.assert_allclose(out, attention(q, k, v, None, False), rtol=1e-5, atol=1e-6)


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


def test_fused_attention_without_queries_or_batch_is_empty() -> None:
    q, k, v = np.ones((2, 0, 4), np.float32), np.ones((2, 3, 4), np.float32), np.ones((2, 3, 5), np.float32)
    assert run("sdpa", q, k, v, None, is_causal=False, scale=None).shape == (2, 0, 5)
    q = np.ones((0, 1, 4), np.float32)
    assert run("sdpa", q, k[:0], v[:0], None, is_causal=False, scale=None).shape == (0, 1, 5)


def test_softmax_of_integers_is_float64() -> None:
    out = run("softmax", np.array([[1, 2, 3]], np.int32), axis=1)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.exp([[1, 2, 3]]) / np.exp([1, 2, 3]).sum())


def gelu64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    out: np.ndarray = 0.5 * x * (1 + erf(x / math.sqrt(2)))
    return out


@pytest.mark.parametrize("size", [1, 7, 8, 9, 15, 17, 1001])
def test_gelu_of_odd_sizes_and_strided_views(size: int) -> None:
    rng = np.random.default_rng()
    x = (rng.standard_normal((size, 3)) * 4).astype(np.float32)[:, 1]  # every third float
    out = run("gelu", x, approximate="none")
    assert out.shape == x.shape and out.dtype == np.float32
    reference = gelu64(x)
    assert (np.abs(out - reference) <= 1e-7 * np.maximum(1, np.abs(x)) + 2**-24 * np.abs(reference)).all()


def test_gelu_of_a_scalar_is_a_scalar() -> None:
    out = run("gelu", np.array(1.5, np.float32), approximate="none")
    assert out.shape == () and out.dtype == np.float32
    assert abs(float(out) - gelu64(np.array(1.5))) <= 2e-7


def test_gelu_compiled_and_numpy_agree_and_propagate_nan_and_inf() -> None:
    x = np.concatenate([GRID[::7], np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)])
    out, numpy_out = run("gelu", x, approximate="none"), numpy_only("gelu", x, approximate="none")
    # the same float64 formula (the compiled one divides by a Newton step, 2^-46) rounded once to
    # float32: one rounding apart at most, or 1e-11 |x| where gelu is near 0 and the cancellation in
    # 1/2 + erf/2 leaves float64 rounding noise (measured: 1 ulp, 8e-11 |x|)
    finite = np.isfinite(x)
    bound = np.spacing(np.abs(numpy_out[finite])) + 1e-11 * np.maximum(1, np.abs(x[finite]))
    assert (np.abs(out - numpy_out)[finite] <= bound).all()
    assert np.isnan(out[-5]) and out[-4] == np.inf
    assert np.isnan(out[-3])  # 0 * -inf, as the formula x * cdf(x) gives in float64
    assert out[-2] == 0 and out[-1] == 0


def layer_norm64(x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    out: np.ndarray = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + eps)
    if w is not None:
        out = out * w
    return out if b is None else out + b


@pytest.mark.parametrize("width", [1, 5, 16, 17, 384, 385])
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_float32_layer_norm_matches_float64_on_odd_widths_and_strided_rows(width: int, affine: str) -> None:
    rng = np.random.default_rng()
    # an offset mean well above the spread: a one-pass variance would lose digits here
    x = (rng.standard_normal((2, 9, 2 * width)) * 3 + 50).astype(np.float32)[..., ::2]
    w = rng.standard_normal(width).astype(np.float32) if affine in ("both", "weight") else None
    b = rng.standard_normal(width).astype(np.float32) if affine in ("both", "bias") else None
    out = run("layer_norm", x, w, b, eps=1e-12)
    assert out.dtype == np.float32 and out.shape == x.shape
    # measured ~1.5e-6 (numpy's float32 mean and variance); the compiled kernel's are float64
    np.testing.assert_allclose(out, layer_norm64(x, w, b, 1e-12), rtol=1e-5, atol=3e-5)


def test_layer_norm_rows_with_nan_or_inf_are_nan_and_leave_the_others_alone() -> None:
    rng = np.random.default_rng()
    x = rng.standard_normal((4, 33)).astype(np.float32)
    x[1, 5], x[2, 30] = np.nan, np.inf
    out = run("layer_norm", x, None, None, eps=1e-5)
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()
    np.testing.assert_allclose(out[[0, 3]], layer_norm64(x[[0, 3]], None, None, 1e-5), rtol=1e-5, atol=1e-5)


def softmax64(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    out: np.ndarray = e / e.sum(-1, keepdims=True)
    return out


def assert_softmax_close(out: np.ndarray, x: np.ndarray) -> None:
    """Within 2e-6 relative of float64's softmax, plus float32's rounding of the shifted score
    ``x - max(x)`` (e^x's relative error is x's absolute one), subnormals as 0."""
    reference = softmax64(x)
    shift = np.abs(x.astype(np.float64) - x.max(-1, keepdims=True))
    shift[np.isinf(shift)] = 0  # a -inf score: exactly 0
    bound = (2e-6 + 2**-24 * shift) * reference + np.finfo(np.float32).tiny
    assert (np.abs(out - reference) <= bound).all()


@pytest.mark.parametrize("width", [1, 3, 16, 17, 33, 128, 130])
def test_float32_softmax_is_within_a_few_ulp_of_float64(width: int) -> None:
    rng = np.random.default_rng()
    x = (rng.standard_normal((3, 5, width)) * 10).astype(np.float32)
    out = run("softmax", x, axis=2)
    assert out.dtype == np.float32
    assert_softmax_close(out, x)


def test_softmax_exponentials_over_the_whole_float_range() -> None:
    # one row per step of 1e-3 down to -100 (below -87.3 e^x is subnormal: 0 within float32's tiny)
    x = np.stack([np.zeros(100_000, np.float32), -np.arange(100_000, dtype=np.float32) / 1000], axis=1)
    assert_softmax_close(run("softmax", x, axis=1), x)


def test_softmax_along_another_axis_and_of_strided_input() -> None:
    x = np.random.default_rng().standard_normal((6, 40)).astype(np.float32)[:, ::3]
    assert_softmax_close(run("softmax", x, axis=0).T, x.T)
    assert_softmax_close(run("softmax", x, axis=1), x)


def test_softmax_rows_with_nan_inf_or_only_minus_inf_are_nan_like_numpy() -> None:
    inf, nan = np.inf, np.nan
    rows = [[0, nan, 1], [-inf, -inf, -inf], [inf, 0, 1], [-inf, 0, 1], [-200, 0, 0], [1, 2, 3]]
    x = np.array(rows, np.float32)
    out = run("softmax", x, axis=1)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(numpy_only("softmax", x, axis=1)))
    assert np.isnan(out[:3]).all()
    assert_softmax_close(out[3:], x[3:])


def test_fused_attention_query_that_sees_no_key_is_nan_in_both_paths() -> None:
    rng = np.random.default_rng()
    q, k, v = (rng.standard_normal((2, 4, 8)).astype(np.float32) for _ in range(3))
    mask = np.ones((2, 4, 4), bool)
    mask[1, 2] = False
    out = run("sdpa", q, k, v, mask, is_causal=False, scale=None)
    assert np.isnan(out[1, 2]).all()
    seen = np.ones(out.shape[:2], bool)
    seen[1, 2] = False
    np.testing.assert_allclose(out[seen], attention(q, k, v, mask, False)[seen], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "row"])
@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_in_blocks_of_query_rows(
    mask_kind: str, causal: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whisper's 1500 x 1500 scores per head do not fit the cache: the compiled path takes each head's
    # queries a block at a time; here blocks of 3 of the 8 queries (the last one shorter)
    monkeypatch.setattr(cpu, "_SCORES_BYTES", 4 * 7 * 3)
    rng = np.random.default_rng()
    q = rng.standard_normal((2, 3, 8, 4)).astype(np.float32)
    k, v = (
        rng.standard_normal((2, 3, 7, 4)).astype(np.float32),
        rng.standard_normal((3, 7, 5)).astype(np.float32),
    )
    masks = {
        "none": None,
        "bool": rng.random((2, 1, 8, 7)) > 0.3,
        "float": rng.standard_normal((8, 7)).astype(np.float32),
        "row": rng.random(7) > 0.3,
    }
    mask = masks[mask_kind]
    if mask is not None and mask.dtype == np.bool_:
        mask[..., 0] = True
    out = run("sdpa", q, k, v, mask, is_causal=causal, scale=0.3)
    expected = attention(q * (0.3 * math.sqrt(4)), k, v, mask, causal)  # attention() divides by sqrt(4)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_fused_attention_kernel_on_odd_sizes_against_float64() -> None:
    # the compiled kernel's tails: 9 and 17 queries (blocks of 8), 33 keys and 7 value columns (padded
    # to 32), a head size of 5, three heads of two batches; keys are transposed 16 x 16 at a time (37
    # keys of 40: two whole blocks each way, then the last keys and the last columns)
    rng = np.random.default_rng()
    for length, source, dim in [(9, 33, 5), (17, 1, 5), (8, 40, 5), (9, 37, 40), (16, 32, 16)]:
        q = rng.standard_normal((2, 3, length, dim)).astype(np.float32)
        k = rng.standard_normal((2, 3, source, dim)).astype(np.float32)
        v = rng.standard_normal((2, 3, source, 7)).astype(np.float32)
        added = rng.standard_normal((2, 1, length, source)).astype(np.float32)
        for mask in (None, added):
            out = run("sdpa", q, k, v, mask, is_causal=False, scale=None)
            np.testing.assert_allclose(out, attention(q, k, v, mask, False), rtol=1e-5, atol=1e-6)


def test_add_is_numpys_sum_for_biases_rows_scalars_and_views() -> None:
    rng = np.random.default_rng()
    x = rng.standard_normal((300, 97)).astype(np.float32)  # above the compiled kernel's minimum size
    for b in (rng.standard_normal(97).astype(np.float32), rng.standard_normal((300, 97)).astype(np.float32)):
        np.testing.assert_array_equal(run("add", x, b), x + b)
        np.testing.assert_array_equal(run("add", x[:, ::2], b[..., ::2]), x[:, ::2] + b[..., ::2])
    np.testing.assert_array_equal(run("add", x, np.array(2.5, np.float32)), x + np.float32(2.5))
    batch = rng.standard_normal((4, 300, 97)).astype(np.float32)  # positions broadcast over a batch
    np.testing.assert_array_equal(run("add", batch, x), batch + x)
    np.testing.assert_array_equal(run("add", batch, x[:1]), batch + x[:1])  # (1, 97): numpy's
    np.testing.assert_array_equal(run("add", x[:3, :5], x[0, :5]), x[:3, :5] + x[0, :5])  # small: numpy's
    assert run("add", x, x.astype(np.float64)).dtype == np.float64  # mixed dtypes: numpy's promotion


@pytest.mark.parametrize(
    ("m", "k", "n"), [(2003, 97, 129), (129, 384, 1152), (37, 100, 1000), (5, 1000, 2000), (1, 300, 20011)]
)
@pytest.mark.parametrize("layout", ["C", "F"])
def test_matmul_of_float32_matrices_against_float64(m: int, k: int, n: int, layout: str) -> None:
    rng = np.random.default_rng()
    order: Literal["C", "F"] = "C" if layout == "C" else "F"
    a, b = (np.asarray(rng.standard_normal(shape), np.float32, order) for shape in ((m, k), (k, n)))
    out = run("matmul", a, b)
    assert out.dtype == np.float32 and out.shape == (m, n)
    reference = a.astype(np.float64) @ b
    # float32 products summed over k in float32: measured ~5e-7 of the largest entry
    assert np.abs(out - reference).max() <= 1e-5 * np.abs(reference).max()


def test_matmul_reads_row_strided_operands_in_place() -> None:
    # the [CLS] rows of a batch (BERT's pooler) and a column block of a weight: rows apart in memory
    rng = np.random.default_rng()
    hidden = rng.standard_normal((8, 128, 384)).astype(np.float32)
    weight = rng.standard_normal((384, 2000)).astype(np.float32)
    a, b = hidden[:, 0], weight[:, 500:1700]
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    out = run("matmul", a, b)
    reference = a.astype(np.float64) @ b
    assert np.abs(out - reference).max() <= 1e-5 * np.abs(reference).max()


def _fused_reference(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, residual: np.ndarray | None, activation: str
) -> np.ndarray:
    out: np.ndarray = x.astype(np.float64) @ w + (0 if bias is None else bias)
    if activation == "gelu":
        out = 0.5 * out * (1 + erf(out / math.sqrt(2)))
    return out + (0 if residual is None else residual)


@pytest.mark.parametrize(
    ("m", "k", "n"), [(600, 97, 129), (129, 384, 1152), (100, 64, 1000), (1, 300, 2001), (3, 5, 7)]
)
@pytest.mark.parametrize("epilogue", ["bias", "bias+gelu", "residual", "bias+residual", "bias+gelu+residual"])
def test_fused_linear_against_float64(m: int, k: int, n: int, epilogue: str) -> None:
    # row splits (600 rows), column splits (129 rows), one row (sgemv), a product below the split size
    rng = np.random.default_rng()
    x, w = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if "bias" in epilogue else None
    residual = rng.standard_normal((m, n)).astype(np.float32) if "residual" in epilogue else None
    activation = "gelu" if "gelu" in epilogue else "none"
    out = run("fused_linear", x, w, bias, residual, activation=activation)
    assert out.dtype == np.float32 and out.shape == (m, n)
    reference = _fused_reference(x, w, bias, residual, activation)
    # float32 products summed in float32, then gelu's fit (1e-7): measured ~5e-7 of the largest entry
    assert np.abs(out - reference).max() <= 1e-5 * np.abs(reference).max()


def test_fused_linear_of_transposed_and_strided_operands_and_other_dtypes() -> None:
    rng = np.random.default_rng()
    x = rng.standard_normal((700, 2, 64)).astype(np.float32)[:, 1]  # rows 128 floats apart
    w = np.asfortranarray(
        rng.standard_normal((64, 300)).astype(np.float32)
    )  # PyTorch's (out, in), transposed
    residual = rng.standard_normal((700, 600)).astype(np.float32)[:, ::2]  # not a BLAS layout: numpy's path
    bias = rng.standard_normal(300).astype(np.float32)
    for r in (residual, np.ascontiguousarray(residual)):
        out = run("fused_linear", x, w, bias, r, activation="gelu")
        reference = _fused_reference(x, w, bias, r, "gelu")
        assert np.abs(out - reference).max() <= 1e-5 * np.abs(reference).max()
    for broadcast in (residual[:1], residual[0]):  # a residual numpy broadcasts: the composition
        out = run("fused_linear", x, w, bias, broadcast, activation="none")
        reference = _fused_reference(x, w, bias, broadcast, "none")
        assert np.abs(out - reference).max() <= 1e-5 * np.abs(reference).max()
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    out64 = run("fused_linear", x64, w64, None, None, activation="gelu")
    assert out64.dtype == np.float64
    np.testing.assert_allclose(out64, _fused_reference(x64, w64, None, None, "gelu"), rtol=1e-12, atol=1e-12)


def test_fused_linear_keeps_nan_and_inf_where_the_separate_kernels_have_them() -> None:
    x = np.ones((600, 4), np.float32)
    x[1, 0], x[2, 0] = np.nan, np.inf
    w = np.ones((4, 40), np.float32)
    out = run("fused_linear", x, w, np.zeros(40, np.float32), None, activation="gelu")
    assert np.isnan(out[1]).all() and np.isposinf(out[2]).all()
    np.testing.assert_array_equal(out, numpy_only("gelu", x @ w, approximate="none"))


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation"),
    [
        ((1, 80, 700), (64, 80, 3), (1,), (1,), (1,)),  # Whisper's first convolution, shorter
        ((2, 64, 701), (64, 64, 3), (2,), (1,), (1,)),  # its second: stride 2, an odd length
        ((2, 3, 17, 19), (8, 3, 4, 4), (4, 4), (0, 0), (1, 1)),  # ViT's patches
        ((1, 5, 13, 11), (6, 5, 3, 2), (2, 1), (1, 2), (2, 1)),
    ],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_float32_convolution_against_float64(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    with_bias: bool,
) -> None:
    # one matrix product of the windows with the weight (split over the threads), bias in its output
    rng = np.random.default_rng()
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    bias = rng.standard_normal(w_shape[0]).astype(np.float32) if with_bias else None
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": 1}
    out = run("conv", x, w, bias, **params)
    wide = [None if a is None else a.astype(np.float64) for a in (x, w, bias)]
    reference = run("conv", *wide, **params)  # float64: numpy's einsum
    assert out.dtype == np.float32 and out.shape == reference.shape and out.flags.c_contiguous
    assert np.abs(out - reference).max() <= 1e-5 * np.abs(reference).max()
