"""Fusion on the wgpu device: chains run as one dispatch with exactly the unfused numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import accelerate_lab as al

pytestmark = pytest.mark.gpu
rng = np.random.default_rng(7)


def dispatches(gpu: Any) -> int:
    return int(gpu.stats.dispatches)


def test_an_elementwise_chain_is_one_dispatch_with_the_unfused_numbers(gpu: Any) -> None:
    x = al.tensor(rng.standard_normal((33, 17)).astype(np.float32), device=gpu)
    b = al.tensor(rng.standard_normal(17).astype(np.float32), device=gpu)
    start = dispatches(gpu)
    fused = al.tanh(al.relu(x * 2.0 + b) - al.exp(-x) / 3.0)
    assert dispatches(gpu) == start  # recorded, not run
    fused_values = fused.numpy()
    assert dispatches(gpu) == start + 1
    steps = [x * 2.0]
    steps.append(steps[-1] + b)
    for step in steps:
        step.numpy()  # forcing each intermediate gives the unfused path
    unfused = al.tanh(al.relu(steps[-1]) - al.exp(-x) / 3.0)
    np.testing.assert_array_equal(fused_values, unfused.numpy())
    expected = np.tanh(np.maximum(x.numpy() * 2 + b.numpy(), 0) - np.exp(-x.numpy()) / 3)
    np.testing.assert_allclose(fused_values, expected, rtol=2e-6, atol=2e-6)


def test_float16_and_uint8_chains_round_and_wrap_after_every_op(gpu: Any) -> None:
    if not gpu.f16:
        pytest.skip("this adapter lacks shader-f16")
    h = rng.standard_normal(101).astype(np.float16)
    u = rng.integers(0, 255, 101).astype(np.uint8)
    th, tu = al.tensor(h, device=gpu), al.tensor(u, device=gpu)
    np.testing.assert_array_equal(
        ((th * 3.3 + 1.1) * th - 0.7).numpy(), (h * np.float16(3.3) + np.float16(1.1)) * h - np.float16(0.7)
    )
    np.testing.assert_array_equal((tu * 7 + 200 - tu).numpy(), u * np.uint8(7) + np.uint8(200) - u)


def test_intermediates_still_referenced_are_written_by_the_same_kernel(gpu: Any) -> None:
    x = al.tensor(rng.standard_normal(50).astype(np.float32), device=gpu)
    start = dispatches(gpu)
    kept = al.exp(x)
    out = kept * 2 + 1
    out.numpy()
    assert dispatches(gpu) == start + 1
    np.testing.assert_allclose(kept.numpy(), np.exp(x.numpy()), rtol=1e-6)
    assert dispatches(gpu) == start + 1  # kept was an extra output: nothing recomputed


def test_linear_with_bias_and_activation_is_one_matmul_kernel(gpu: Any) -> None:
    x = al.tensor(rng.standard_normal((3, 9, 24)).astype(np.float32), device=gpu)
    w = al.tensor(rng.standard_normal((40, 24)).astype(np.float32), device=gpu)
    b = al.tensor(rng.standard_normal(40).astype(np.float32), device=gpu)
    start = dispatches(gpu)
    fused = al.gelu(al.linear(x, w, b), approximate="tanh").numpy()
    assert dispatches(gpu) == start + 1
    hidden = al.linear(x, w, b)
    hidden.numpy()
    unfused = al.gelu(hidden, approximate="tanh").numpy()
    np.testing.assert_allclose(fused, unfused, rtol=1e-6, atol=1e-6)
    reference = al.gelu(al.linear(*(al.tensor(t.numpy()) for t in (x, w, b))), approximate="tanh").numpy()
    np.testing.assert_allclose(fused, reference, rtol=1e-4, atol=1e-4)


def test_a_kept_matmul_result_is_not_fused_away(gpu: Any) -> None:
    a = al.tensor(rng.standard_normal((5, 6)).astype(np.float32), device=gpu)
    product = a @ a.T
    activated = al.relu(product + 1.0)
    np.testing.assert_allclose(activated.numpy(), np.maximum(product.numpy() + 1, 0), rtol=1e-6)


def test_writing_into_an_input_first_computes_pending_readers(gpu: Any) -> None:
    x = al.tensor(np.arange(6, dtype=np.float32), device=gpu)
    doubled = x * 2
    x[:] = 100.0
    np.testing.assert_array_equal(doubled.numpy(), np.arange(6) * 2)


def test_long_chains_split_before_the_operand_limit(gpu: Any) -> None:
    xs = [al.tensor(np.full(4, float(i), np.float32), device=gpu) for i in range(gpu.max_operands + 5)]
    total = xs[0]
    for t in xs[1:]:
        total = total + t
    np.testing.assert_array_equal(total.numpy(), np.full(4, sum(range(len(xs))), np.float32))


def test_the_pipeline_of_a_chain_is_compiled_once(gpu: Any) -> None:
    x = al.tensor(rng.standard_normal(8).astype(np.float32), device=gpu)
    (al.sigmoid(x) * 3).numpy()
    compiled = gpu.runtime.pipelines_compiled
    for scale in (4.0, 5.0):  # scalars travel in the uniform: same source
        (al.sigmoid(x) * scale).numpy()
    assert gpu.runtime.pipelines_compiled == compiled
