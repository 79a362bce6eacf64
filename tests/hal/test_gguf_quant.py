"""The packed GGUF matmul kernels (``matmul_q4_1``, ``matmul_q8_0``) on the cpu and wgpu devices against
a float64 product with the weight decoded independently here, on fresh random blocks.

Tolerance: rtol 1e-5 and atol 1e-5 of the result's largest magnitude (float32 accumulation over K).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal import get_device, wgpu_kernels
from accelerate_lab.hal.gguf_quant import BLOCK_BYTES, pack_rows, row_words

rng = np.random.default_rng()


def random_blocks(qtype: str, n: int, k: int) -> np.ndarray:
    """``(n, k)`` values as ``qtype`` blocks of random scales, minimums and codes: ``(n, bytes)`` uint8."""
    blocks = n * k // 32
    scales = rng.uniform(-0.1, 0.1, (blocks, 2)).astype(np.float16).view(np.uint8)
    if qtype == "Q4_1":
        body = np.concatenate([scales, rng.integers(0, 256, (blocks, 16), dtype=np.uint8)], axis=1)
    else:
        body = np.concatenate([scales[:, :2], rng.integers(0, 256, (blocks, 32), dtype=np.uint8)], axis=1)
    return body.reshape(n, -1)


def decoded(rows: np.ndarray, qtype: str, k: int) -> np.ndarray:
    """The float64 weights of ``rows``, value by value as the format's description says."""
    blocks = rows.reshape(rows.shape[0], k // 32, BLOCK_BYTES[qtype])
    d = blocks[..., 0:2].copy().view(np.float16).astype(np.float64)
    if qtype == "Q4_1":
        m = blocks[..., 2:4].copy().view(np.float16).astype(np.float64)
        codes = blocks[..., 4:].astype(np.int64)
        q = np.concatenate([codes % 16, codes // 16], axis=-1)
        return (q * d + m).reshape(rows.shape[0], k)
    q = blocks[..., 2:].copy().view(np.int8).astype(np.float64)
    return (q * d).reshape(rows.shape[0], k)


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(1, marks=pytest.mark.gpu, id="wgpu-1-lane"),
        pytest.param(32, marks=pytest.mark.gpu, id="wgpu-32-lanes"),
    ]
)
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The cpu, or wgpu with one thread a column (software adapters) or 32 summed across (others)."""
    if request.param == "cpu":
        return get_device("cpu")
    monkeypatch.setattr(wgpu_kernels, "gguf_lanes", lambda dev: request.param)
    return request.getfixturevalue("gpu")


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
@pytest.mark.parametrize(("m", "k", "n"), [(1, 32, 7), (5, 96, 13), (9, 64, 33)])
def test_packed_matmul_equals_the_product_with_the_decoded_weight(
    device: Any, qtype: str, m: int, k: int, n: int
) -> None:
    rows = random_blocks(qtype, n, k)
    weight = pack_rows(rows)
    assert weight.shape == (n, row_words(qtype, k)) and weight.dtype == np.int32
    x = rng.standard_normal((m, k)).astype(np.float32)
    fallbacks = dict(device.stats.cpu_fallbacks)  # the session's gpu device keeps earlier tests' counts
    out = device.download(
        device.run(f"matmul_{qtype.lower()}", [device.upload(x), device.upload(weight)], {})
    )
    expected = x.astype(np.float64) @ decoded(rows, qtype, k).T
    assert out.shape == (m, n) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert device.stats.cpu_fallbacks == fallbacks


def test_q8_0_rows_of_an_odd_number_of_blocks_are_padded_to_whole_words() -> None:
    rows = random_blocks("Q8_0", 3, 96)  # 3 blocks: 102 bytes a row, 26 words
    weight = pack_rows(rows)
    assert weight.shape == (3, 26)
    assert (weight.view(np.uint8)[:, 102:] == 0).all()
    assert (weight.view(np.uint8)[:, :102] == rows).all()


def test_shapes_that_do_not_fit_are_refused() -> None:
    cpu = get_device("cpu")
    x = np.ones((2, 48), np.float32)
    with pytest.raises(ShapeError, match="multiple of 32"):
        cpu.run("matmul_q4_1", [x, np.zeros((3, 8), np.int32)], {})
    with pytest.raises(ShapeError, match=r"\(N, 17\)"):
        cpu.run("matmul_q8_0", [np.ones((2, 64), np.float32), np.zeros((3, 16), np.int32)], {})
    with pytest.raises(TypeError, match="int32 words"):
        cpu.run("matmul_q4_1", [np.ones((2, 64), np.float32), np.zeros((3, 10), np.uint8)], {})
