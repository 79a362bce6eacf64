"""workgroup_reduce.wgsl's two variants (subgroup operations, and the shared-memory tree) on the kernels
built on it: row reductions, argmax, softmax, layer_norm and fused attention, each against float64
numpy on random inputs, with row lengths that are not multiples of any subgroup size, NaN and infinity.

Tolerances: sums within 1e-6 of the row's absolute sum (mean likewise, over n); var, layer_norm,
log_softmax rtol 1e-4 / atol 1e-5; softmax and attention rtol 1e-4 / atol 1e-6; float16 softmax
rtol 2e-3 / atol 1e-3; max, min and argmax exact (NaN where numpy gives NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal.wgpu_kernels import kernel_source
from accelerate_lab.hal.wgpu_runtime import AdapterProfile

pytestmark = pytest.mark.gpu
rng = np.random.default_rng(4004)
ROW_LENGTHS = [1, 5, 13, 64, 100, 257, 1000]
_HELPERS = ("workgroup_reduce.wgsl", "elementwise_ops.wgsl")


@pytest.fixture(params=["subgroups", "shared memory"])
def dev(request: pytest.FixtureRequest, gpu: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The session's wgpu device with one reduction variant forced; afterwards, checks that every
    kernel built on workgroup_reduce.wgsl was compiled in that variant."""
    runtime = gpu.runtime
    wanted = request.param == "subgroups"
    if wanted and not runtime.profile.subgroups:
        pytest.skip("this adapter has no subgroup operations")
    sources: list[str] = []
    compile_pipeline = runtime.pipeline

    def spy(source: str, *args: Any, **kwargs: Any) -> Any:
        sources.append(source)
        return compile_pipeline(source, *args, **kwargs)

    monkeypatch.setattr(runtime, "pipeline", spy)
    monkeypatch.setattr(runtime, "subgroups", wanted)
    fallbacks = dict(gpu.stats.cpu_fallbacks)
    yield gpu
    reducing = [s for s in sources if "fn wg_reduce(" in s]
    assert reducing and all(("subgroupAdd(" in s) == wanted for s in reducing)
    assert gpu.stats.cpu_fallbacks == fallbacks


def on(dev: Any, fn: Callable[..., al.Tensor], *arrays: np.ndarray) -> np.ndarray:
    out: np.ndarray = fn(*(al.tensor(a, device=dev) for a in arrays)).numpy()
    return out


def f32(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def test_the_flag_selects_the_variant_and_drops_the_directive_naga_rejects() -> None:
    aliases = (("IN", "f32"), ("OUT", "f32"))
    with_flag = kernel_source("rows.wgsl", ("SUBGROUPS",), aliases, _HELPERS)
    without = kernel_source("rows.wgsl", (), aliases, _HELPERS)
    assert "subgroupAdd(" in with_flag and "subgroupAdd(" not in without
    assert with_flag.count("fn wg_reduce(") == without.count("fn wg_reduce(") == 1
    assert "enable subgroups;" not in with_flag


@pytest.mark.parametrize(
    ("adapter_type", "features", "chosen"),
    [("CPU", {"subgroup"}, True), ("CPU", set(), False), ("DiscreteGPU", {"subgroup"}, False)],
)
def test_the_subgroup_variant_is_the_default_only_where_it_measured_faster(
    adapter_type: str, features: set[str], chosen: bool
) -> None:
    profile = AdapterProfile(adapter_type, "Vulkan", "", "", "", "", frozenset(features))
    assert profile.subgroup_reductions is chosen


@pytest.mark.parametrize("n", ROW_LENGTHS)
def test_sum_mean_var_match_float64(dev: Any, n: int) -> None:
    x = f32(6, n, scale=3.0) + 1
    x64 = x.astype(np.float64)
    mass = np.abs(x64).sum(axis=1)
    np.testing.assert_array_less(
        np.abs(on(dev, lambda t: al.sum(t, 1), x) - x64.sum(axis=1)), 1e-6 * mass + 1e-30
    )
    mean = on(dev, lambda t: al.mean(t, 1), x)
    np.testing.assert_array_less(np.abs(mean - x64.mean(axis=1)), 1e-6 * mass / n + 1e-30)
    if n > 1:
        var = on(dev, lambda t: al.var(t, 1, correction=1), x)
        np.testing.assert_allclose(var, x64.var(axis=1, ddof=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", ROW_LENGTHS)
def test_max_min_propagate_nan_and_keep_infinities(dev: Any, n: int) -> None:
    x = f32(7, n)
    for row, count in ((0, 1), (2, 3), (4, n)):
        x[row, rng.choice(n, size=min(count, n), replace=False)] = np.nan
    x[5, rng.integers(n)] = np.inf
    x[6, rng.integers(n)] = -np.inf
    np.testing.assert_array_equal(on(dev, lambda t: al.max(t, 1), x), np.max(x, axis=1))
    np.testing.assert_array_equal(on(dev, lambda t: al.min(t, 1), x), np.min(x, axis=1))
    np.testing.assert_array_equal(on(dev, al.max, x), np.max(x))


@pytest.mark.parametrize("n", ROW_LENGTHS)
def test_argmax_takes_the_first_maximum_and_the_first_nan(dev: Any, n: int) -> None:
    x = rng.integers(-2, 3, size=(8, n)).astype(np.float32)  # many ties
    x[1, rng.choice(n, size=min(3, n), replace=False)] = np.nan
    x[2] = -np.inf
    x[3] = 7.0
    x[4, rng.integers(n)] = np.inf
    x[5, -1] = 3.0  # the maximum in the last lane
    x[6] = rng.standard_normal(n).astype(np.float32)
    x[7, rng.choice(n, size=min(2, n), replace=False)] = np.nan
    np.testing.assert_array_equal(on(dev, lambda t: al.argmax(t, 1), x), np.argmax(x, axis=1))
    np.testing.assert_array_equal(on(dev, al.argmax, x), np.argmax(x))


@pytest.mark.parametrize("n", ROW_LENGTHS)
def test_softmax_and_log_softmax_match_float64(dev: Any, n: int) -> None:
    x = f32(5, n, scale=8.0)
    x[1, rng.choice(n, size=n // 2, replace=False)] = -np.inf  # masked entries
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=1, keepdims=True)
    log_total = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(on(dev, al.softmax, x), np.exp(shifted - log_total), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(on(dev, al.log_softmax, x), shifted - log_total, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", ROW_LENGTHS)
def test_layer_norm_with_affine_matches_float64(dev: Any, n: int) -> None:
    x, w, b = f32(4, n, scale=2.0) + 3, f32(n), f32(n)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    expected = (x64 - mean) / np.sqrt(x64.var(axis=1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(on(dev, al.layer_norm, x, w, b), expected, rtol=1e-4, atol=1e-5)


def test_float16_softmax_matches_float64(dev: Any) -> None:
    if not dev.f16:
        pytest.skip("this adapter has no float16")
    x = f32(3, 77, scale=4.0).astype(np.float16)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    actual = on(dev, al.softmax, x)
    assert actual.dtype == np.float16
    np.testing.assert_allclose(
        actual.astype(np.float64), e / e.sum(axis=1, keepdims=True), rtol=2e-3, atol=1e-3
    )


def attention64(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None, causal: bool
) -> np.ndarray:
    scores = q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    result: np.ndarray = (weights / weights.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)
    return result


@pytest.mark.parametrize("s", [7, 70, 300])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_float64(dev: Any, s: int, causal: bool) -> None:
    q, k, v = f32(2, 5, 8, scale=2.0), f32(2, s, 8, scale=2.0), f32(2, s, 6)
    mask = f32(2, 5, s, scale=3.0)
    plain = on(dev, lambda a, b, c: al.scaled_dot_product_attention(a, b, c, is_causal=causal), q, k, v)
    np.testing.assert_allclose(plain, attention64(q, k, v, None, causal), rtol=1e-4, atol=1e-6)
    masked = on(
        dev, lambda a, b, c, m: al.scaled_dot_product_attention(a, b, c, m, is_causal=causal), q, k, v, mask
    )
    np.testing.assert_allclose(masked, attention64(q, k, v, mask, causal), rtol=1e-4, atol=1e-6)
