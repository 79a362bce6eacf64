"""Compiled kernels for the cpu device: C sources in ``hal/csrc/`` built once with the system C compiler.

Like tinygrad's CLANG backend, nothing is compiled at install time: :func:`load` builds
``csrc/<name>.c`` with ``$CC`` (else ``cc``) into a shared library under
``${ACCELERATE_LAB_CACHE:-~/.cache/accelerate_lab}/native/``, named by a hash of the source, the
headers beside it, the compiler, its flags and this CPU's features, and opens it with :mod:`ctypes`
(plain C functions, no Python C API, so one build serves every Python version). Where no compiler is
found, the build fails, or ``ACCELERATE_LAB_NATIVE=0`` is set, :func:`load` returns ``None`` and the
cpu device keeps its numpy kernels; :func:`native_status` says which and why (``accelerate-lab
doctor`` prints it).

>>> lib = load("gguf")  # doctest: +SKIP
>>> native_status()["gguf"]  # doctest: +SKIP
'compiled: ~/.cache/accelerate_lab/native/gguf-3f1c....so'
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from accelerate_lab.hal.browser_cache import cache_root

__all__ = ["load", "native_status"]

SOURCES = Path(__file__).parent / "csrc"
# -ffp-contract=fast lets the compiler fuse multiply-adds; no -ffast-math: kernels keep IEEE NaN/inf rules
FLAGS = (
    "-O3",
    "-march=native",
    "-fPIC",
    "-shared",
    "-pthread",
    "-ffp-contract=fast",
    "-fno-math-errno",
    "-std=c11",
)

_lock = threading.Lock()
_status: dict[str, str] = {}


def _cpu_features() -> str:
    """This CPU's model and feature flags (part of a build's name: ``-march=native`` depends on them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU part")
    return "\n".join(sorted({line for line in lines if line.startswith(wanted)}))


def _compiler() -> tuple[str, str] | None:
    """The C compiler's path and the first line of its ``--version``, or None where there is none."""
    found = shutil.which(os.environ.get("CC") or "cc")
    if found is None:
        return None
    try:
        version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return found, version.stdout.partition("\n")[0]


def _build(name: str, source: Path, compiler: tuple[str, str]) -> Path:
    """The shared library for ``source``, compiled now unless a build with the same key exists."""
    digest = hashlib.sha256(source.read_bytes())
    for header in sorted(source.parent.glob("*.h")):  # what the sources include
        digest.update(b"\0" + header.read_bytes())
    for part in (*compiler, *FLAGS, _cpu_features()):
        digest.update(b"\0" + part.encode())
    target = cache_root() / "native" / f"{name}-{digest.hexdigest()[:16]}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # compile next to the target, then rename: another process never opens a half-written library
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        built = Path(work) / target.name
        result = subprocess.run(
            [compiler[0], *FLAGS, str(source), "-o", str(built), "-lm"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{compiler[0]} failed on {source.name}:\n{result.stderr.strip()}")
        os.replace(built, target)
    return target


@functools.cache
def load(name: str) -> ctypes.CDLL | None:
    """The library compiled from ``csrc/<name>.c``, or None where native kernels are off or cannot build."""
    with _lock:
        source = SOURCES / f"{name}.c"
        if not source.is_file():
            raise FileNotFoundError(f"no C source {source}")
        if os.environ.get("ACCELERATE_LAB_NATIVE", "1") == "0":
            _status[name] = "off: ACCELERATE_LAB_NATIVE=0"
            return None
        compiler = _compiler()
        if compiler is None:
            _status[name] = f"off: no C compiler ({os.environ.get('CC') or 'cc'}) on PATH; numpy kernels used"
            return None
        try:
            library = ctypes.CDLL(str(_build(name, source, compiler)))
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            _status[name] = f"off: build failed ({error}); numpy kernels used"
            return None
        _status[name] = f"compiled: {library._name}"
        return library


def native_status() -> dict[str, str]:
    """For each C source, whether its compiled kernels are in use and why not (loads each to find out)."""
    for source in sorted(SOURCES.glob("*.c")):
        load(source.stem)
    return dict(_status)
