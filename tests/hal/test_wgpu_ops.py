"""Every kernel on the wgpu device against the cpu device (numpy) on the same random inputs.

Tolerances: float32 rtol/atol 1e-5 (reductions and matmul 1e-4, transcendental chains 2e-5);
float16 rtol/atol 1e-2 against numpy's own float16 results; integer and bool results exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import accelerate_lab as al
from accelerate_lab.hal.wgpu_kernels import matmul_workgroup_bytes

pytestmark = pytest.mark.gpu
rng = np.random.default_rng(2024)
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def f32(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def same(gpu: Any, fn: Callable[..., al.Tensor], *arrays: np.ndarray, tol: float = 1e-5) -> None:
    """``fn`` on cpu tensors and on wgpu tensors: same shape, dtype and values within ``tol``."""
    expected = fn(*(al.tensor(a) for a in arrays)).numpy()
    actual = fn(*(al.tensor(a, device=gpu) for a in arrays)).numpy()
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(actual, expected)


UNARY = ["neg", "exp", "abs", "sign", "relu", "sigmoid", "tanh", "silu"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_ops_match_numpy_on_odd_shapes(gpu: Any, name: str) -> None:
    same(gpu, getattr(al, name), f32(3, 7) * 4)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_numpy_including_the_tails(gpu: Any, approximate: Literal["none", "tanh"]) -> None:
    x = np.concatenate([f32(37) * 3, np.array([-12, -4, -1e-3, 0, 1e-3, 4, 12], np.float32)])
    same(gpu, lambda t: al.gelu(t, approximate=approximate), x, tol=2e-5)


def test_log_sqrt_erf_follow_numpy_at_domain_edges(gpu: Any) -> None:
    x = np.array([-1.0, 0.0, 1e-30, 0.5, 3.0, 1e30], np.float32)
    same(gpu, al.log, x)
    same(gpu, al.sqrt, x)
    from accelerate_lab.tensor.ops.dispatch import apply

    same(gpu, lambda t: apply("erf", (t,)), np.linspace(-5, 5, 41, dtype=np.float32), tol=2e-6)


BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"]


@pytest.mark.parametrize("name", BINARY)
def test_binary_ops_broadcast_like_numpy(gpu: Any, name: str) -> None:
    same(gpu, getattr(al, name), f32(2, 1, 5), f32(3, 1))


def test_pow_handles_negative_bases_and_integral_exponents(gpu: Any) -> None:
    base = np.array([-2.0, -2.0, 0.0, 0.0, 1.5, -1.5, 4.0], np.float32)
    exponent = np.array([3.0, 2.0, 2.0, -1.0, 0.5, 0.5, -0.5], np.float32)
    same(gpu, lambda a, b: a**b, base, exponent)


def test_where_and_scalars_use_numpy_promotion(gpu: Any) -> None:
    same(gpu, lambda a, b: al.where(a > 0, a, b), f32(4, 5), f32(5))
    same(gpu, lambda a: a * 2.5 - 1, f32(6))
    same(gpu, lambda a: al.where(a > 0, a, 0.0), f32(6))


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool"])
def test_integer_and_bool_arithmetic_wraps_like_numpy(gpu: Any, dtype: str) -> None:
    a = rng.integers(0, 200, (4, 6)).astype(dtype)
    b = rng.integers(0, 200, (6,)).astype(dtype)
    for fn in (al.add, al.mul, al.maximum, al.minimum, al.lt, al.eq):
        same(gpu, fn, a, b)
    if dtype != "bool":
        same(gpu, al.sub, a, b)
        same(gpu, lambda x: -x + 3, a)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("float32", "int32"),
        ("float32", "uint8"),
        ("int32", "float32"),
        ("float32", "bool"),
        ("int64", "int32"),
        ("int32", "int64"),
        ("float32", "float16"),
        ("float16", "float32"),
    ],
)
def test_casts_follow_numpy_astype(gpu: Any, source: str, target: str) -> None:
    x = (f32(5, 3) * 100).astype(source)
    same(gpu, lambda t: t.astype(target), x)


def test_int64_comparisons_and_selection_run_on_the_gpu(gpu: Any) -> None:
    a = rng.integers(-(2**40), 2**40, (9,))
    b = rng.integers(-(2**40), 2**40, (9,))
    before = dict(gpu.stats.cpu_fallbacks)
    for fn in (al.lt, al.ge, al.eq, al.maximum, lambda x, y: al.where(x > y, x, y)):
        same(gpu, fn, a, b)
    assert gpu.stats.cpu_fallbacks == before


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var"])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2)])
def test_reductions_match_numpy_over_any_axes(gpu: Any, name: str, axis: Any) -> None:
    same(gpu, lambda t: getattr(al, name)(t, axis, keepdims=axis == 1), f32(3, 5, 7), tol=1e-4)


def test_var_correction_and_argmax_ties_match_numpy(gpu: Any) -> None:
    same(gpu, lambda t: al.var(t, 1, correction=1), f32(4, 9), tol=1e-4)
    ties = np.array([[1, 3, 3, 0], [5, 5, 5, 5], [-1, -2, -1, -3]], np.float32)
    for axis in (None, 0, 1):
        same(gpu, lambda t, a=axis: al.argmax(t, a), ties)
    same(gpu, lambda t: al.argmax(t, 1), f32(5, 300))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax_along_any_axis(gpu: Any, axis: int) -> None:
    x = f32(4, 6, 5) * 10
    same(gpu, lambda t: al.softmax(t, axis), x, tol=1e-5)
    same(gpu, lambda t: al.log_softmax(t, axis), x, tol=1e-4)


def test_layer_norm_with_and_without_affine(gpu: Any) -> None:
    same(gpu, al.layer_norm, f32(3, 4, 33), tol=1e-4)
    same(gpu, lambda x, w, b: al.layer_norm(x, w, b, eps=1e-3), f32(5, 33), f32(33), f32(33), tol=1e-4)


@pytest.mark.parametrize(
    ("a", "b"),
    [((7, 9), (9, 13)), ((9,), (9, 13)), ((7, 9), (9,)), ((2, 1, 5, 3), (4, 3, 6)), ((65, 67), (67, 33))],
)
def test_matmul_follows_numpy_shape_rules(gpu: Any, a: tuple[int, ...], b: tuple[int, ...]) -> None:
    same(gpu, lambda x, y: x @ y, f32(*a), f32(*b), tol=1e-4)


def test_matmul_reads_transposed_and_sliced_operands_without_copies(gpu: Any) -> None:
    a, b = f32(12, 10), f32(9, 12)
    same(gpu, lambda x, y: x.T @ y.T, a, b, tol=1e-4)
    same(gpu, lambda x, y: x[::2, 1:] @ y.T[3:, ::3], a, b, tol=1e-4)


def test_matmul_float64_reference_error_is_small(gpu: Any) -> None:
    a, b = f32(64, 96), f32(96, 80)
    out = (al.tensor(a, device=gpu) @ al.tensor(b, device=gpu)).numpy().astype(np.float64)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert np.abs(out - exact).max() / np.abs(exact).max() < 1e-6


@pytest.mark.parametrize("config", [(8, 4, 8), (16, 4, 8), (16, 8, 8), (8, 8, 8), (16, 4, 16), (16, 8, 16)])
def test_matmul_tile_configs_on_odd_strided_and_fused_operands(
    gpu: Any, config: tuple[int, int, int]
) -> None:
    limit = gpu.runtime.profile.limits.get("max-compute-workgroup-storage-size", 16384)
    if matmul_workgroup_bytes(*config) > limit:
        pytest.skip(f"tile {config} needs more workgroup memory than this adapter's {limit} bytes")
    default = gpu.runtime.matmul_config
    gpu.runtime.matmul_config = config
    try:
        a, b, w, bias = f32(2, 131, 70), f32(70, 129), f32(67, 70), f32(67)
        same(gpu, lambda x, y: x @ y, a, b, tol=1e-4)
        same(gpu, lambda x, y: x[:, ::2, 1:].transpose(0, 2, 1) @ y[3:69, ::2], a, b, tol=1e-4)
        same(gpu, lambda x, y, z: al.relu(al.linear(x, y, z)), a, w, bias, tol=1e-4)
    finally:
        gpu.runtime.matmul_config = default


def test_linear_and_embedding_match_numpy(gpu: Any) -> None:
    same(gpu, al.linear, f32(2, 3, 8), f32(5, 8), f32(5), tol=1e-4)
    for ids in (rng.integers(0, 11, (3, 4)), rng.integers(0, 11, (7,)).astype(np.int32)):
        same(gpu, al.embedding, ids, f32(11, 6))


def test_embedding_ids_out_of_range_raise_index_error(gpu: Any) -> None:
    out = al.embedding(al.tensor(np.array([0, 12]), device=gpu), al.tensor(f32(4, 3), device=gpu))
    with pytest.raises(IndexError, match=r"outside \[0, num_embeddings\)"):
        out.numpy()
    assert (
        al.embedding(al.tensor(np.array([1]), device=gpu), al.tensor(f32(4, 3), device=gpu)).numpy() != 0
    ).any()


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_with_stride_padding_dilation_groups(gpu: Any, groups: int) -> None:
    x, w, b = f32(2, 4, 7, 6), f32(6, 4 // groups, 3, 2), f32(6)
    same(
        gpu,
        lambda x, w, b: al.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=groups),
        x,
        w,
        b,
        tol=1e-4,
    )


def test_conv1d_and_its_gradients_match_numpy(gpu: Any) -> None:
    x, w = f32(2, 3, 11), f32(4, 3, 3)

    def grads(xt: al.Tensor, wt: al.Tensor) -> al.Tensor:
        xt.requires_grad = wt.requires_grad = True
        al.conv1d(xt, wt, stride=2, padding=1, dilation=2).sum().backward()
        assert xt.grad is not None and wt.grad is not None
        return al.concat([xt.grad.reshape(-1), wt.grad.reshape(-1)])

    same(gpu, lambda a, b: al.conv1d(a, b, stride=2, padding=1), x, w, tol=1e-4)
    same(gpu, grads, x, w, tol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_matches_composed_numpy(gpu: Any, causal: bool) -> None:
    q, k, v = f32(2, 3, 5, 8), f32(2, 3, 70, 8), f32(2, 3, 70, 6)
    same(gpu, lambda q, k, v: al.scaled_dot_product_attention(q, k, v, is_causal=causal), q, k, v, tol=1e-5)


def test_attention_with_boolean_and_additive_masks(gpu: Any) -> None:
    q, k, v = f32(2, 4, 8), f32(2, 6, 8), f32(2, 6, 3)
    keep = rng.random((4, 6)) > 0.3
    keep[:, 0] = True
    same(gpu, lambda *t: al.scaled_dot_product_attention(*t), q, k, v, keep)
    same(
        gpu, lambda q, k, v, m: al.scaled_dot_product_attention(q, k, v, m, scale=0.3), q, k, v, f32(1, 4, 6)
    )


def test_views_are_read_through_strides(gpu: Any) -> None:
    x = f32(4, 6, 5)
    for fn in (
        lambda t: t.T,
        lambda t: t[1:, ::-2, 3],
        lambda t: t[2, ::-1, 4],
        lambda t: al.broadcast_to(t[0, 1, 2:3], (9,)),
        lambda t: t[..., None, 1],
        lambda t: t.transpose(1, 0, 2)[2],
        lambda t: al.broadcast_to(t[:, :1], (4, 6, 5)),
        lambda t: t.T.reshape(-1),
        lambda t: t[::2].clone(),
    ):
        same(gpu, fn, x)
        same(gpu, lambda t, f=fn: f(t) * 2 + 1, x)


def test_setitem_writes_in_place_through_views(gpu: Any) -> None:
    def assign(t: al.Tensor) -> al.Tensor:
        t = t.clone()
        t[1, 1:4] = 7.0
        t[0] = t[2]
        t[:, ::2] = t[:, 1::2] * 2
        view = t[3]
        view[:] = -1.0
        t.set(5.0, 2, 0)
        return t

    same(gpu, assign, f32(4, 6))


def test_concat_stack_and_index_gradients(gpu: Any) -> None:
    same(gpu, lambda a, b: al.concat([a, b, a], 1), f32(3, 2), f32(3, 4))
    same(gpu, lambda a: al.stack([a, a * 2], 0), f32(3, 2))

    def grad(t: al.Tensor) -> al.Tensor:
        t.requires_grad = True
        (t[1:, ::2] * 3).sum().backward()
        assert t.grad is not None
        return t.grad

    same(gpu, grad, f32(4, 5))


def test_float16_runs_natively_when_the_adapter_has_shader_f16(gpu: Any) -> None:
    if not gpu.f16:
        pytest.skip("this adapter lacks shader-f16")
    before = sum(gpu.stats.cpu_fallbacks.values())
    x, y = (f32(4, 33) * 3).astype(np.float16), f32(33).astype(np.float16)
    same(gpu, lambda a, b: al.relu(a * b + 1.5) - a, x, y, tol=0)
    for fn in (lambda a: al.softmax(a, -1), lambda a: al.sum(a, 1), al.layer_norm, lambda a: a @ a.T):
        same(gpu, fn, x, tol=2e-2)
    assert sum(gpu.stats.cpu_fallbacks.values()) == before


def test_float64_runs_on_the_cpu_visibly(gpu: Any) -> None:
    x = al.tensor(f32(3, 4).astype(np.float64), device=gpu)
    before = gpu.stats.cpu_fallbacks.get("exp", 0)
    with pytest.warns(RuntimeWarning, match="on the cpu"):
        out = al.exp(x * 1.0000001)  # a new reason string is warned once per device
    np.testing.assert_allclose(out.numpy(), np.exp(x.numpy() * 1.0000001))
    assert gpu.stats.cpu_fallbacks["exp"] == before + 1
    np.testing.assert_array_equal(x.T.numpy(), x.numpy().T)  # layout stays on the gpu


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    drop=st.lists(st.booleans(), min_size=4, max_size=4),
    step=st.sampled_from([1, 2, -1]),
)
@SETTINGS
def test_broadcast_binary_on_strided_views_matches_numpy(
    gpu: Any, shape: list[int], drop: list[bool], step: int
) -> None:
    a = f32(*shape)
    other = [1 if d else n for n, d in zip(shape, drop, strict=False)]
    b = f32(*other)
    same(gpu, lambda x, y: (x[..., ::step] - y[..., ::step]) * x[..., ::step], a, b)


@given(m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 40), batch=st.integers(1, 3))
@SETTINGS
def test_matmul_on_random_sizes(gpu: Any, m: int, k: int, n: int, batch: int) -> None:
    same(gpu, lambda a, b: a @ b, f32(batch, m, k), f32(k, n), tol=1e-4)
