"""The aligned matmul fast path (matmul_aligned.wgsl) against numpy float64, and its selection.

Tolerance: max |ours - exact| / max |exact| < 1e-6 (float32 accumulation over K <= 256 terms);
which shader ran is read from ``wgpu_kernels.matmul_dispatches``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal import wgpu_kernels
from accelerate_lab.hal.wgpu_kernels import matmul_aligned_workgroup_bytes

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


@pytest.fixture(params=[None, (128, 128, 8), (128, 64, 16), (64, 64, 16), (64, 128, 8)])
def tiled(gpu: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The device with one aligned tile config (None: the adapter's default)."""
    config = request.param or gpu.runtime.matmul_aligned_config
    limit = gpu.runtime.profile.limits.get("max-compute-workgroup-storage-size", 16384)
    if matmul_aligned_workgroup_bytes(*config) > limit:
        pytest.skip(f"tile {config} needs more workgroup memory than this adapter's {limit} bytes")
    default = gpu.runtime.matmul_aligned_config
    gpu.runtime.matmul_aligned_config = config
    try:
        yield gpu
    finally:
        gpu.runtime.matmul_aligned_config = default


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


@pytest.mark.parametrize("config", [(128, 128, 12), (96, 128, 8), (128, 128, 64)])
def test_bad_aligned_tiles_are_refused_whatever_the_shape(gpu: Any, config: tuple[int, int, int]) -> None:
    default = gpu.runtime.matmul_aligned_config
    gpu.runtime.matmul_aligned_config = config
    try:
        with pytest.raises(ValueError, match="aligned matmul tile"):
            (al.tensor(f32(130, 64), device=gpu) @ al.tensor(f32(64, 66), device=gpu)).numpy()
    finally:
        gpu.runtime.matmul_aligned_config = default
