"""The C-kernel loader: builds once per source/compiler/CPU, falls back to numpy with a reason."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest

from accelerate_lab.hal import cpu_native

SOURCE = """
double scaled_sum(const double *x, long n, double k) {
    double s = 0;
    for (long i = 0; i < n; i++) s += x[i];
    return s * k;
}
"""


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "csrc"
    folder.mkdir()
    monkeypatch.setattr(cpu_native, "SOURCES", folder)
    monkeypatch.setenv("ACCELERATE_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ACCELERATE_LAB_NATIVE", raising=False)
    cpu_native.load.cache_clear()
    cpu_native._status.clear()
    yield folder
    cpu_native.load.cache_clear()
    cpu_native._status.clear()


def _scaled_sum(library: ctypes.CDLL, values: list[float], k: float) -> float:
    function = library.scaled_sum
    function.restype = ctypes.c_double
    function.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_long, ctypes.c_double]
    array = (ctypes.c_double * len(values))(*values)
    return float(function(array, len(values), k))


def test_builds_once_and_runs(sources: Path, tmp_path: Path) -> None:
    (sources / "demo.c").write_text(SOURCE)
    library = cpu_native.load("demo")
    assert library is not None
    assert _scaled_sum(library, [1.5, 2.0, -0.25], 2.0) == 6.5
    built = list((tmp_path / "cache" / "native").glob("demo-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    cpu_native.load.cache_clear()
    assert cpu_native.load("demo") is not None
    assert built[0].stat().st_mtime_ns == stamp  # the cached build was reused
    assert cpu_native.native_status()["demo"].startswith("compiled: ")


def test_changed_source_is_rebuilt(sources: Path, tmp_path: Path) -> None:
    (sources / "demo.c").write_text(SOURCE)
    assert cpu_native.load("demo") is not None
    (sources / "demo.c").write_text(SOURCE.replace("s * k", "s * k + 1"))
    cpu_native.load.cache_clear()
    library = cpu_native.load("demo")
    assert library is not None
    assert _scaled_sum(library, [1.0], 1.0) == 2.0
    assert len(list((tmp_path / "cache" / "native").glob("demo-*.so"))) == 2


def test_switched_off(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (sources / "demo.c").write_text(SOURCE)
    monkeypatch.setenv("ACCELERATE_LAB_NATIVE", "0")
    assert cpu_native.load("demo") is None
    assert cpu_native.native_status() == {"demo": "off: ACCELERATE_LAB_NATIVE=0"}


def test_no_compiler(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (sources / "demo.c").write_text(SOURCE)
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert cpu_native.load("demo") is None
    assert "no C compiler (no-such-compiler-here)" in cpu_native.native_status()["demo"]


def test_compile_error_is_reported(sources: Path, tmp_path: Path) -> None:
    (sources / "broken.c").write_text("int broken( {\n")
    assert cpu_native.load("broken") is None
    status = cpu_native.native_status()["broken"]
    assert status.startswith("off: build failed") and "broken.c" in status
    assert not list((tmp_path / "cache" / "native").glob("broken-*"))  # no half-written library left


def test_unknown_source(sources: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no C source"):
        cpu_native.load("absent")
