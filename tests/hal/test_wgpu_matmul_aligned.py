"""The aligned matmul fast path (matmul_aligned.wgsl) against numpy float64, and its selection.

Tolerance: max |ours - exact| / max |exact| < 1e-6 (float32 accumulation over K <= 256 terms);
which shader ran is read from ``wgpu_kernels.matmul_dispatches``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal import wgpu_kernels, wgpu_runtime
from accelerate_lab.hal.wgpu_kernels import matmul_aligned_workgroup_bytes
from accelerate_lab.hal.wgpu_runtime import AdapterProfile

pytestmark = pytest.mark.gpu
rng = np.random.default_rng(4096)
ALIGNED, GENERAL = "matmul_aligned.wgsl", "matmul.wgsl"
TOL = 1e-6


def f32(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def ran(gpu: Any, fn: Callable[..., al.Tensor], *arrays: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """``fn`` on wgpu tensors, its values and the matmul dispatches it recorded per shader."""
    before = dict(wgpu_kernels.matmul_dispatches)
    values = fn(*(al.tensor(a, device=gpu) for a in arrays)).numpy()
    after = wgpu_kernels.matmul_dispatches
    return values, {
        name: after[name] - before.get(name, 0) for name in after if after[name] > before.get(name, 0)
    }


def close(actual: np.ndarray, exact: np.ndarray) -> None:
    assert actual.shape == exact.shape and actual.dtype == np.float32
    assert np.abs(actual - exact).max() / np.abs(exact).max() < TOL


@contextmanager
def aligned(gpu: Any, config: tuple[int, int, int] | None, options: dict[str, int]) -> Iterator[Any]:
    """The device with this aligned tile config and options, restored after."""
    default = gpu.runtime.matmul_aligned_config, gpu.runtime.matmul_aligned_options
    gpu.runtime.matmul_aligned_config, gpu.runtime.matmul_aligned_options = config, options
    try:
        yield gpu
    finally:
        gpu.runtime.matmul_aligned_config, gpu.runtime.matmul_aligned_options = default


@pytest.fixture(
    params=[
        (None, {}),
        ((128, 128, 8), {}),
        ((128, 64, 16), {}),
        ((64, 64, 16), {}),
        ((64, 128, 8), {}),
        ((64, 64, 8), {"UNROLL": 8, "GROUP": 2}),
        ((64, 64, 16), {"UNROLL": 4, "GROUP": 3}),
        ((64, 128, 8), {"UNROLL": 4, "TRUSTED": 1}),  # compiled without naga's index clamps
    ]
)
def tiled(gpu: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The device with one aligned tile config and options (None: the adapter's default)."""
    config = request.param[0] or gpu.runtime.matmul_aligned_config
    limit = gpu.runtime.profile.limits.get("max-compute-workgroup-storage-size", 16384)
    if matmul_aligned_workgroup_bytes(*config) > limit:
        pytest.skip(f"tile {config} needs more workgroup memory than this adapter's {limit} bytes")
    with aligned(gpu, config, request.param[1]) as dev:
        yield dev


def test_aligned_products_match_float64(tiled: Any) -> None:
    a, b, w = f32(256, 128), f32(128, 128), f32(256, 128)
    out, shaders = ran(tiled, lambda x, y: x @ y, a, b)
    close(out, a.astype(np.float64) @ b)
    assert shaders == {ALIGNED: 1}
    out, shaders = ran(tiled, lambda x, y: x @ y.T, a, w)  # B = W^T, walked along K
    close(out, a.astype(np.float64) @ w.T)
    assert shaders == {ALIGNED: 1}


def test_batched_and_broadcast_aligned_products_match_float64(tiled: Any) -> None:
    a, b, shared = f32(2, 3, 128, 64), f32(2, 3, 64, 128), f32(64, 128)
    out, shaders = ran(tiled, lambda x, y: x @ y, a, b)
    close(out, a.astype(np.float64) @ b)
    assert shaders == {ALIGNED: 1}
    out, shaders = ran(tiled, lambda x, y: x @ y, a, shared)
    close(out, a.astype(np.float64) @ shared)
    assert shaders == {ALIGNED: 1}


def test_linear_with_bias_and_activation_fuses_into_the_aligned_kernel(tiled: Any) -> None:
    x, w, bias = f32(2, 128, 64), f32(128, 64), f32(128)
    start = tiled.stats.dispatches
    out, shaders = ran(tiled, lambda x, w, b: al.relu(al.linear(x, w, b) * 0.5), x, w, bias)
    assert tiled.stats.dispatches == start + 1 and shaders == {ALIGNED: 1}
    close(out, np.maximum((x.astype(np.float64) @ w.T + bias) * 0.5, 0))


@pytest.mark.parametrize("group", [1, 2, 4, 8])
def test_grouped_tile_orders_cover_every_tile_once(gpu: Any, group: int) -> None:
    """5 x 3 tiles of 64 x 64: groups of rows that do not divide the 5 rows, or exceed them."""
    a, b = f32(2, 320, 64), f32(64, 192)
    with aligned(gpu, (64, 64, 8), {"UNROLL": 4, "GROUP": group}):
        out, shaders = ran(gpu, lambda x, y: x @ y, a, b)
    close(out, a.astype(np.float64) @ b)
    assert shaders == {ALIGNED: 1}


def test_unaligned_or_strided_operands_fall_back_to_the_general_kernel(gpu: Any) -> None:
    rows, cols, step = gpu.runtime.matmul_aligned_config
    a, b = f32(rows + 1, 64), f32(64, cols)
    out, shaders = ran(gpu, lambda x, y: x @ y, a, b)  # M not a multiple of the tile
    close(out, a.astype(np.float64) @ b)
    assert shaders == {GENERAL: 1}
    a, b = f32(rows, 2 * step + 2), f32(2 * step + 2, cols)  # K not a multiple of BK (nor of 4)
    out, shaders = ran(gpu, lambda x, y: x @ y, a, b)
    close(out, a.astype(np.float64) @ b)
    assert shaders == {GENERAL: 1}
    a, b = f32(rows, 128), f32(64, cols)  # A's columns strided
    out, shaders = ran(gpu, lambda x, y: x[:, ::2] @ y, a, b)
    close(out, a[:, ::2].astype(np.float64) @ b)
    assert shaders == {GENERAL: 1}
    a, b = f32(rows, 65), f32(64, cols)  # rows contiguous but not 16-byte aligned
    out, shaders = ran(gpu, lambda x, y: x[:, 1:] @ y, a, b)
    close(out, a[:, 1:].astype(np.float64) @ b)
    assert shaders == {GENERAL: 1}


def test_the_aligned_path_can_be_switched_off(gpu: Any) -> None:
    default = gpu.runtime.matmul_aligned_config
    gpu.runtime.matmul_aligned_config = None
    try:
        a, b = f32(128, 64), f32(64, 128)
        out, shaders = ran(gpu, lambda x, y: x @ y, a, b)
        close(out, a.astype(np.float64) @ b)
        assert shaders == {GENERAL: 1}
    finally:
        gpu.runtime.matmul_aligned_config = default


@pytest.mark.parametrize(
    ("config", "options"),
    [
        ((128, 128, 12), {}),
        ((96, 128, 8), {}),
        ((128, 128, 64), {}),
        ((64, 64, 8), {"UNROLL": 16}),
        ((64, 64, 4), {"UNROLL": 8}),
        ((64, 64, 8), {"GROUP": 0}),
        ((64, 64, 8), {"SPLIT": 2}),
        ((96, 128, 8), {"TRUSTED": 1}),
    ],
)
def test_bad_aligned_tiles_are_refused_whatever_the_shape(
    gpu: Any, config: tuple[int, int, int], options: dict[str, int]
) -> None:
    with aligned(gpu, config, options), pytest.raises(ValueError, match="aligned matmul tile"):
        (al.tensor(f32(130, 64), device=gpu) @ al.tensor(f32(64, 66), device=gpu)).numpy()


@pytest.mark.parametrize("trusted", [True, False])
def test_gpu_adapters_take_the_configuration_measured_on_an_h100(
    monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    """(128, 128, 8) unrolled by 8 in a trusted module ran 4096^3 at 37.6 TFLOP/s on an H100; without
    trusted modules GPUs keep matmul.wgsl; CPU adapters take a small tile with no options."""
    monkeypatch.setattr(wgpu_runtime, "trusted_modules_available", lambda: trusted)
    h100 = AdapterProfile("DiscreteGPU", "Vulkan", "nvidia", "", "H100", "580.159.04", frozenset())
    lavapipe = AdapterProfile("CPU", "Vulkan", "mesa", "", "llvmpipe", "25", frozenset())
    assert h100.matmul_aligned_config == ((128, 128, 8) if trusted else None)
    assert h100.matmul_aligned_options == {"UNROLL": 8, "TRUSTED": 1}
    assert matmul_aligned_workgroup_bytes(128, 128, 8) <= 49152  # the H100's workgroup memory
    assert (lavapipe.matmul_aligned_config, lavapipe.matmul_aligned_options) == ((64, 64, 8), {})
