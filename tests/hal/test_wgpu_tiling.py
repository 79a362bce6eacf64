"""Kernels of the wgpu device past the binding limit: a device told that one storage binding holds
4 KiB (and that offsets align to 256 bytes) runs every kernel in several pieces, against float64
numpy on fresh random inputs.

Tolerances (float32 against float64): matmuls, convolutions and their gradients rtol/atol 1e-4;
reductions and normalisations 1e-5 (sums 1e-4); attention 1e-5; gathers exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.errors import DeviceError
from accelerate_lab.hal import wgpu_kernels
from accelerate_lab.hal.gguf_quant import pack_rows
from accelerate_lab.hal.wgpu_tiling import aligned_quantum, fit_box, pieces
from tests.hal.test_gguf_quant import decoded, random_blocks

rng = np.random.default_rng()
LIMIT = 4096


def make(limit: int) -> Any:
    pytest.importorskip("wgpu", reason="the gpu extra (wgpu-py) is not installed")
    from accelerate_lab.hal.wgpu_device import WgpuDevice

    overrides = {"max-storage-buffer-binding-size": limit, "min-storage-buffer-offset-alignment": 256}
    return WgpuDevice(limits_override=overrides)


@pytest.fixture(scope="module")
def small() -> Iterator[Any]:
    yield make(LIMIT)


def f32(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def run(dev: Any, fn: Callable[..., al.Tensor], *arrays: np.ndarray) -> tuple[np.ndarray, int]:
    """``fn`` on ``dev`` tensors of ``arrays``: its result and the dispatches it took."""
    tensors = [al.tensor(a, device=dev) for a in arrays]
    before = dev.stats.dispatches
    out = fn(*tensors).numpy()
    return out, dev.stats.dispatches - before


def close(actual: np.ndarray, expected: np.ndarray, tol: float) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=tol, atol=tol)


def wide(*arrays: np.ndarray) -> list[np.ndarray]:
    return [a.astype(np.float64) for a in arrays]


# ---- windows and pieces (no adapter needed) ----------------------------------------------------


def profile(limit: int, align: int) -> Any:
    from accelerate_lab.hal.wgpu_runtime import AdapterProfile

    limits = {"max-storage-buffer-binding-size": limit, "min-storage-buffer-offset-alignment": align}
    return SimpleNamespace(profile=AdapterProfile("CPU", "Vulkan", "", "", "", "", frozenset(), limits))


def test_fit_box_halves_the_widest_axis_and_rounds_cut_axes_to_their_quantum() -> None:
    runtime = profile(4096 + 512, 256)  # 4096 usable bytes after two alignments of slack
    # rows of 10 float32 (40 bytes) and a fixed 8-element reach: 100 rows would span 4032 bytes
    assert fit_box(runtime, [(4, [10, 1], 7)], [300, 10]) == [75, 10]
    assert fit_box(runtime, [(4, [10, 1], 7)], [300, 10], [32, 1]) == [64, 10]
    assert fit_box(runtime, [(4, [10, 1], 0)], [100, 10]) == [100, 10]  # 3996 bytes: fits whole
    with pytest.raises(DeviceError, match=r"one row needs a binding of 8004 bytes.*\(4608\)"):
        fit_box(runtime, [(4, [2001], 2000)], [3], unit="row")


def test_pieces_cover_the_space_once_with_short_last_boxes() -> None:
    seen = np.zeros((7, 5), int)
    for (r, c), (rows, cols) in pieces([7, 5], [3, 2]):
        seen[r : r + rows, c : c + cols] += 1
    assert (seen == 1).all()
    assert aligned_quantum(profile(4096, 256), 40) == 32  # 32 rows of 40 bytes: 1280 = 5 * 256
    assert aligned_quantum(profile(4096, 256), 512) == 1


# ---- matmul ----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("fn", "shapes"),
    [
        (lambda a, b: a @ b, [(70, 50), (50, 90)]),  # B row-major and too large: copied along K
        (lambda a, b: a @ b.T, [(33, 40), (45, 40)]),  # transposed B (a linear layer's weight)
        (lambda a, b: a.T @ b, [(40, 33), (40, 21)]),  # transposed A
        (lambda a, b: a @ b, [(3, 1, 20, 30), (4, 30, 25)]),  # batched with broadcast batch axes
        (lambda a, b: a @ b, [(40, 9, 7), (7, 5)]),  # many small matrices: several batches a piece
        (lambda a, b: a @ b, [(1, 300), (300, 3)]),  # one long row: blocks of columns
    ],
)
def test_matmul_runs_in_pieces_and_matches_float64(
    small: Any, fn: Callable[..., Any], shapes: list[Any]
) -> None:
    arrays = [f32(*s) for s in shapes]
    out, dispatches = run(small, fn, *arrays)
    close(out, fn(*wide(*arrays)), 1e-4)
    assert dispatches > 1


@pytest.mark.gpu
def test_fused_bias_and_activation_epilogues_are_tiled_with_the_product(small: Any) -> None:
    x, w, b = f32(37, 40), f32(90, 40), f32(90)
    out, _ = run(small, lambda x, w, b: al.relu(al.linear(x, w, b) * 0.5 - 1.0), x, w, b)
    x64, w64, b64 = wide(x, w, b)
    close(out, np.maximum((x64 @ w64.T + b64) * 0.5 - 1.0, 0), 1e-4)
    a, v, c = f32(70, 30), f32(30), f32(70)  # a vector B: the bias runs along the rows of A
    out, _ = run(small, lambda a, v, c: al.tanh(a @ v + c), a, v, c)
    close(out, np.tanh(wide(a)[0] @ v + c), 1e-4)


@pytest.mark.gpu
def test_aligned_matmul_pieces_keep_the_fast_kernel() -> None:
    config = make(40 << 10).runtime.matmul_aligned_config
    if config is None:
        pytest.skip("this adapter has no aligned matmul kernel")
    rows, cols, _ = config  # whole tiles; a binding holds 1.5 blocks of rows (the cuts halve 4 blocks)
    dev = make(rows * cols * 6)
    a, b, w = f32(4 * rows, cols), f32(cols, cols), f32(cols, cols)
    before = wgpu_kernels.matmul_dispatches["matmul_aligned.wgsl"]
    product, _ = run(dev, lambda a, b: a @ b, a, b)
    weighted, _ = run(dev, lambda a, w: a @ w.T, a, w)
    close(product, wide(a)[0] @ b, 1e-4)
    close(weighted, wide(a)[0] @ w.T, 1e-4)
    assert wgpu_kernels.matmul_dispatches["matmul_aligned.wgsl"] - before == 8  # 4 row blocks each


@pytest.mark.gpu
def test_q8_matmul_splits_rows_and_output_columns(small: Any) -> None:
    m, k, n = 37, 45, 300
    q = rng.integers(-127, 128, (n, k), dtype=np.int8)
    padded = np.zeros((n, -(-k // 4) * 4), np.int8)
    padded[:, :k] = q
    x, scale, x_scale, bias = f32(m, k), f32(n) / 50, np.abs(f32(k)) + 0.5, f32(n)
    buffers = [small.upload(t) for t in (x, padded.view("<i4"), scale, x_scale, bias)]
    before = small.stats.dispatches
    out = small.download(small.run("matmul_q8", buffers, {}))
    expected = ((x * x_scale).astype(np.float64) @ q.T.astype(np.float64)) * scale + bias
    close(out, expected, 1e-4)
    assert small.stats.dispatches - before > 1


@pytest.mark.gpu
@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
def test_gguf_matmul_splits_rows_and_weight_rows(small: Any, qtype: str) -> None:
    m, k, n = 37, 64, 150
    rows = random_blocks(qtype, n, k)
    x = f32(m, k)
    before = small.stats.dispatches
    out = small.download(
        small.run(f"matmul_{qtype.lower()}", [small.upload(x), small.upload(pack_rows(rows))], {})
    )
    expected = x.astype(np.float64) @ decoded(rows, qtype, k).T
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert small.stats.dispatches - before > 1


# ---- rows ----------------------------------------------------------------------------------------


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return np.asarray(e / e.sum(axis=axis, keepdims=True))


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("fn", "reference", "tol"),
    [
        (lambda t: al.sum(t, axis=-1), lambda x: x.sum(-1), 1e-4),
        (al.sum, np.sum, 1e-4),  # one row past the limit: reduced in chunks, then the chunks' sums
        (al.mean, np.mean, 1e-5),
        (al.max, np.max, 1e-5),
        (lambda t: al.sum(t, axis=0), lambda x: x.sum(0), 1e-4),
        (lambda t: al.mean(t, axis=1, keepdims=True), lambda x: x.mean(1, keepdims=True), 1e-5),
        (lambda t: al.max(t, axis=-1), lambda x: x.max(-1), 1e-5),
        (lambda t: al.min(t, axis=0), lambda x: x.min(0), 1e-5),
        (lambda t: al.var(t, axis=-1, correction=1), lambda x: x.var(-1, ddof=1), 1e-5),
        (lambda t: al.softmax(t, -1), lambda x: _softmax(x, -1), 1e-5),
        (lambda t: al.softmax(t, 0), lambda x: _softmax(x, 0), 1e-5),
        (lambda t: al.log_softmax(t, -1), lambda x: np.log(_softmax(x, -1)), 1e-5),
    ],
)
def test_row_kernels_run_by_blocks_of_rows(
    small: Any, fn: Callable[..., Any], reference: Callable[..., Any], tol: float
) -> None:
    x = f32(37, 45)
    out, dispatches = run(small, fn, x)
    close(out, reference(x.astype(np.float64)), tol)
    assert dispatches > 1


@pytest.mark.gpu
def test_argmax_and_layer_norm_run_by_blocks_of_rows(small: Any) -> None:
    x, weight, bias = f32(53, 29), f32(29), f32(29)
    out, dispatches = run(small, lambda t: al.argmax(t, axis=-1), x)
    np.testing.assert_array_equal(out, x.argmax(-1))
    assert dispatches > 1
    out, _ = run(small, lambda t, w, b: al.layer_norm(t, w, b, eps=1e-5), x, weight, bias)
    x64 = x.astype(np.float64)
    normed = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    close(out, normed * weight + bias, 1e-5)


# ---- attention, convolution, gather ----------------------------------------------------------


def _attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray, causal: bool) -> np.ndarray:
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + mask
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    return np.asarray(_softmax(scores, -1) @ v)


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [False, True])
def test_attention_runs_by_blocks_of_batch_and_heads(small: Any, causal: bool) -> None:
    q, k, v, mask = f32(2, 3, 9, 16), f32(2, 3, 11, 16), f32(2, 3, 11, 8), f32(9, 11)
    out, dispatches = run(
        small, lambda q, k, v, m: al.scaled_dot_product_attention(q, k, v, m, is_causal=causal), q, k, v, mask
    )
    q64, k64, v64, mask64 = wide(q, k, v, mask)
    close(out, _attention(q64, k64, v64, mask64, causal), 1e-5)
    assert dispatches > 1


@pytest.mark.gpu
def test_conv2d_and_its_gradients_run_by_blocks_of_samples(small: Any) -> None:
    x, w, b = f32(5, 3, 9, 8), f32(4, 3, 3, 3), f32(4)

    def forward_and_grads(xt: al.Tensor, wt: al.Tensor, bt: al.Tensor) -> al.Tensor:
        xt.requires_grad = wt.requires_grad = True
        y = al.conv2d(xt, wt, bt, stride=1, padding=1)
        (y * y).sum().backward()
        assert xt.grad is not None and wt.grad is not None
        return al.concat([y.reshape(-1), xt.grad.reshape(-1), wt.grad.reshape(-1)])

    out, dispatches = run(small, forward_and_grads, x, w, b)
    expected = forward_and_grads(*(al.tensor(a) for a in wide(x, w, b))).numpy()
    close(out, expected, 1e-4)
    assert dispatches > 3


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_embedding_gathers_by_blocks_of_ids(small: Any, dtype: str) -> None:
    ids, table = rng.integers(0, 10, 300).astype(dtype), f32(10, 7)
    out, dispatches = run(small, al.embedding, ids, table)
    np.testing.assert_array_equal(out, table[ids])
    assert dispatches > 1


# ---- one unit past the limit -------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("fn", "shapes"),
    [
        (lambda t: al.softmax(t, -1), [(2, 1100)]),  # a row of 4400 bytes
        (al.var, [(2, 1100)]),  # a variance is not a reduction of chunks
        (lambda a, b: a @ b, [(2, 1100), (1100, 3)]),  # a row of A of 4400 bytes
        (lambda q, k, v: al.scaled_dot_product_attention(q, k, v), [(1, 40, 32), (1, 8, 32), (1, 8, 32)]),
    ],
)
def test_a_single_unit_past_the_limit_is_a_clear_error(
    small: Any, fn: Callable[..., Any], shapes: list[Any]
) -> None:
    with pytest.raises(al.DeviceError, match=rf"max-storage-buffer-binding-size \({LIMIT}\)"):
        run(small, fn, *(f32(*s) for s in shapes))
