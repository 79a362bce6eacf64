"""The cpu device's packed GGUF matmuls (compiled ``csrc/gguf.c`` and the numpy fallback) against a float64
product with the weight decoded independently (`decoded`), on fresh random blocks.

Tolerance: rtol 1e-5 and atol 1e-5 of the result's largest magnitude (float32 sums over K; the decoded
weights themselves are exact). NaN and infinity land where the float64 product has them.
"""

from __future__ import annotations

import ctypes
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from accelerate_lab.hal import cpu_gguf, cpu_native
from accelerate_lab.hal.gguf_quant import BLOCK_BYTES, dequantize_words, pack_rows
from tests.hal.test_gguf_quant import decoded, random_blocks

rng = np.random.default_rng()
# one activation row (a decode step), rows by fours and the rest, and the BLAS path from BLAS_ROWS on
SHAPES = [
    (1, 32, 1),
    (1, 576, 37),
    (3, 96, 13),
    (6, 64, 9),
    (cpu_gguf.BLAS_ROWS - 1, 160, 5),
    (cpu_gguf.BLAS_ROWS, 64, 9),
    (cpu_gguf.BLAS_ROWS + 3, 160, 21),
    (cpu_gguf.BLAS_ROWS, 64, cpu_gguf.DECODED_BYTES // (4 * 64) + 5),  # two slices decoded for BLAS
]
F16_SPECIALS = {"inf": 0x7C00, "-inf": 0xFC00, "nan": 0x7E00}


def _clear() -> None:
    cpu_native.load.cache_clear()
    cpu_native._status.clear()
    cpu_gguf._native.cache_clear()


def _skip_without_compiler() -> NoReturn:
    """Skip where there is no C compiler; a compiler that rejects gguf.c is a bug, not a missing tool."""
    status = cpu_native.native_status()["gguf"]
    if "build failed" in status:
        pytest.fail(status)
    pytest.skip(f"no compiled gguf kernels: {status}")


@pytest.fixture(params=["compiled", "numpy"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The compiled kernels (skipped where they do not build) or the numpy fallback, forced."""
    _clear()
    if request.param == "numpy":
        monkeypatch.setenv("ACCELERATE_LAB_NATIVE", "0")
        assert not cpu_gguf.compiled()
    elif not cpu_gguf.compiled():
        _skip_without_compiler()
    yield request.param
    monkeypatch.undo()
    _clear()


def _product(qtype: str, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = cpu_gguf.matmul_gguf(f"matmul_{qtype.lower()}")(x, pack_rows(rows))
    assert out.shape == (x.shape[0], rows.shape[0]) and out.dtype == np.float32
    return out


def _assert_close(out: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_product_equals_float64_of_the_decoded_weight(path: str, qtype: str, m: int, k: int, n: int) -> None:
    rows = random_blocks(qtype, n, k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    _assert_close(_product(qtype, x, rows), x.astype(np.float64) @ decoded(rows, qtype, k).T)


@pytest.mark.parametrize("kernel", ["matmul_q4_1", "matmul_q8_0"])
@pytest.mark.parametrize("m", [1, cpu_gguf.BLAS_ROWS])
def test_rows_of_no_blocks_give_zeros(path: str, kernel: str, m: int) -> None:
    out = cpu_gguf.matmul_gguf(kernel)(np.ones((m, 0), np.float32), np.zeros((3, 0), np.int32))
    np.testing.assert_array_equal(out, np.zeros((m, 3), np.float32))


def _scales(rows: np.ndarray, qtype: str, k: int, values: np.ndarray, at: int = 0) -> None:
    """Set the float16 at byte ``at`` of every block of ``rows`` to ``values`` (one per block)."""
    blocks = rows.reshape(rows.shape[0], k // 32, BLOCK_BYTES[qtype])
    blocks[..., at : at + 2] = values.astype(np.float16).reshape((*blocks.shape[:2], 1)).view(np.uint8)


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
@pytest.mark.parametrize("m", [1, 4, cpu_gguf.BLAS_ROWS])
def test_extreme_and_subnormal_scales(path: str, qtype: str, m: int) -> None:
    k, n = 256, 11
    rows = random_blocks(qtype, n, k)
    count = n * k // 32
    magnitude = rng.choice([65504.0, 3e4, 6e-8, 1e-6, 2e-5], count)  # float16's largest, subnormals
    _scales(rows, qtype, k, magnitude * rng.choice([-1.0, 1.0], count))
    if qtype == "Q4_1":
        _scales(rows, qtype, k, rng.uniform(-65504, 65504, count), at=2)
    x = rng.standard_normal((m, k)).astype(np.float32)
    _assert_close(_product(qtype, x, rows), x.astype(np.float64) @ decoded(rows, qtype, k).T)


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
@pytest.mark.parametrize("m", [3, 5, cpu_gguf.BLAS_ROWS])
def test_nan_and_infinity_land_where_float64_puts_them(path: str, qtype: str, m: int) -> None:
    k, n = 128, 16
    rows = random_blocks(qtype, n, k)
    blocks = rows.reshape(n, k // 32, BLOCK_BYTES[qtype])
    for row, special in zip([1, 4, 9], F16_SPECIALS.values(), strict=True):  # one block's scale each
        blocks[row, 2, 0:2] = np.frombuffer(np.uint16(special).tobytes(), np.uint8)
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[0, 5], x[1, 70] = np.inf, np.nan
    with np.errstate(invalid="ignore", over="ignore"):  # numpy warns of the NaN it makes
        out = _product(qtype, x, rows)
        expected = x.astype(np.float64) @ decoded(rows, qtype, k).T
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))
    np.testing.assert_array_equal(out[np.isinf(out)], expected[np.isinf(expected)])
    finite = np.isfinite(expected)
    assert finite[2:].any()
    _assert_close(out[finite], expected[finite])


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
def test_compiled_decoding_is_numpys_bit_for_bit(qtype: str) -> None:
    native = cpu_gguf._native()
    if native is None:
        _skip_without_compiler()
    k, n = 3 * 32, 7  # Q8_0: rows of an odd number of blocks are padded to whole words
    rows = random_blocks(qtype, n, k)
    rows.reshape(n, 3, BLOCK_BYTES[qtype])[2, 1, 0:2] = np.frombuffer(np.uint16(0x7E00).tobytes(), np.uint8)
    weight = pack_rows(rows)
    out = np.empty((n, k), np.float32)
    decode = native[f"matmul_{qtype.lower()}"].dequantize
    decode(weight.ctypes.data, n, k, weight.shape[1] * 4, out.ctypes.data)
    np.testing.assert_array_equal(out, dequantize_words(weight, qtype, k))


@pytest.fixture(params=["avx2", "portable"])
def other_build(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """``gguf.c`` built without AVX-512 (its AVX2 path), or without any of AVX2, FMA and F16C (its
    portable C), by a compiler wrapper that appends the switches; skipped where that does not build."""
    switches = "-mno-avx512f" if request.param == "avx2" else "-mno-avx512f -mno-avx2 -mno-fma -mno-f16c"
    wrapper = tmp_path / "cc"
    wrapper.write_text(f'#!/bin/sh\nexec cc "$@" {switches}\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setenv("ACCELERATE_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ACCELERATE_LAB_NATIVE", raising=False)
    _clear()
    library = cpu_native.load("gguf")
    if library is None:
        pytest.skip(f"gguf.c does not build with {switches}: {cpu_native.native_status()['gguf']}")
    library.gguf_simd.restype = ctypes.c_char_p
    built = library.gguf_simd().decode()
    if built != request.param:
        pytest.skip(f"{switches} still builds the {built} path on this machine")
    yield request.param
    monkeypatch.undo()
    _clear()


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
def test_other_simd_paths(other_build: str, qtype: str) -> None:
    for m, k, n in [(1, 96, 5), (5, 576, 19)]:
        rows = random_blocks(qtype, n, k)
        _scales(rows, qtype, k, rng.choice([6e-8, 1e-6, -0.1, 65504.0], n * k // 32))  # subnormal halves too
        x = rng.standard_normal((m, k)).astype(np.float32)
        _assert_close(_product(qtype, x, rows), x.astype(np.float64) @ decoded(rows, qtype, k).T)
