"""float32 products on AMX tiles (``csrc/amx.h``): each float split into three bfloat16 parts, six
tile products; against float64, against the other kernels, on every split and with NaN and inf."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from accelerate_lab.hal import cpu_nn
from tests.hal.test_cpu_kernels import _fused_reference, run

# measured: at most 6.6e-7 of the largest entry (k = 1536); float32 FMA tiles 1.3e-6. Three parts of
# A and B but only the three largest products would give ~2.7e-5: the bound tells them apart.
BOUND = 2e-6


@pytest.fixture(autouse=True)
def on_amx() -> Iterator[None]:
    """AMX on (these tests need it), and left as it was."""
    was = cpu_nn.amx()
    if not was and not cpu_nn.amx(True):
        pytest.skip("no AMX-BF16 here (or Linux refuses its tile state, or no compiled kernels)")
    yield
    cpu_nn.amx(was)


def _case(
    m: int, k: int, n: int, epilogue: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    rng = np.random.default_rng()
    x, w = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if "bias" in epilogue else None
    residual = rng.standard_normal((m, n)).astype(np.float32) if "residual" in epilogue else None
    return x, w, bias, residual


@pytest.mark.parametrize(
    ("m", "k", "n"),
    [
        (256, 384, 1152),  # BERT's attention projection, two sentences: column blocks per thread
        (700, 97, 64),  # chunks of rows per thread; k padded to 128, the last rows short of a tile
        (300, 1536, 96),  # k in three blocks of 512
        (600, 1536, 64),  # several chunks of rows (256 at this k)
    ],
)
@pytest.mark.parametrize("epilogue", ["none", "bias", "bias+gelu+residual", "residual"])
def test_amx_products_against_float64(m: int, k: int, n: int, epilogue: str) -> None:
    x, w, bias, residual = _case(m, k, n, epilogue)
    activation = "gelu" if "gelu" in epilogue else "none"
    out = run("fused_linear", x, w, bias, residual, activation=activation)
    reference = _fused_reference(x, w, bias, residual, activation)
    assert np.abs(out - reference).max() <= BOUND * np.abs(reference).max()
    cpu_nn.amx(False)
    other = run("fused_linear", x, w, bias, residual, activation=activation)
    assert np.abs(other - reference).max() <= 1e-5 * np.abs(reference).max()
    assert not np.array_equal(out, other)  # the AMX path ran: its roundings are its own


@pytest.mark.parametrize("m", [300, 1000])  # column blocks, then chunks of rows, per thread
def test_amx_products_give_the_same_bits_on_any_thread_count(m: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1000 rows: chunks of 256 rows on one or two threads, of 192 on three (equal shares), the last shorter
    x, w, bias, _ = _case(m, 384, 352, "bias")
    monkeypatch.setattr(cpu_nn, "blas_threads", lambda: 1)
    single = run("fused_linear", x, w, bias, None, activation="gelu")
    for threads in (2, 3):
        monkeypatch.setattr(cpu_nn, "blas_threads", lambda threads=threads: threads)
        np.testing.assert_array_equal(run("fused_linear", x, w, bias, None, activation="gelu"), single)


@pytest.mark.parametrize("where", ["a", "b"])
@pytest.mark.parametrize("m", [300, 1000])
def test_nan_and_inf_keep_ieee_rules(where: str, m: int) -> None:
    # an inf's bfloat16 parts are inf, 0, 0, and inf * 0 is NaN: such products run on the other kernels
    x, w, bias, _ = _case(m, 640, 96, "bias")  # 1000 rows: four chunks, two of them with NaN or inf
    if where == "a":
        x[5, 3], x[290, 0] = np.inf, np.nan
    else:
        w[3, 7], w[0, 50] = -np.inf, np.nan
    out = run("fused_linear", x, w, bias, None, activation="none")
    expected = x @ w + bias
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=1e-4, atol=1e-4)


def test_amx_can_be_turned_off_and_on() -> None:
    assert cpu_nn.amx(False) is False and cpu_nn.amx() is False
    assert cpu_nn.amx(True) is True
