"""numpy's OpenBLAS as the cpu device's compiled kernels use it: its thread count, ``sgemm`` and ``sgemv``.

The compiled kernels use as many threads as numpy's BLAS may (:func:`blas_threads`), so that
``threadpoolctl.threadpool_limits(n, "blas")`` (or ``OPENBLAS_NUM_THREADS``) governs the whole cpu
device alike. Large float32 matrix products are split over those threads by the C code
(``cpu_nn.matmul``), each part one single-threaded ``cblas_sgemm`` or ``cblas_sgemv``
(:func:`routines`), while OpenBLAS is set to one thread (:func:`single_threaded`): OpenBLAS's own
workers busy-wait for about 0.1 s after each threaded call, which would take the other cores from the
kernels that run between matmuls.

Found in the OpenBLAS library numpy loaded (Linux's ``/proc/self/maps``), under the prefixes and
suffixes its builds use (as threadpoolctl looks them up). Where numpy's BLAS is not such an OpenBLAS,
:func:`blas_threads` is the CPUs this process may run on and :func:`routines` is None.

>>> blas_threads() >= 1
True
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Routines", "blas_threads", "routines", "single_threaded"]

_AFFIXES = [(prefix, suffix) for prefix in ("", "scipy_") for suffix in ("", "64_", "_64_")]


@dataclass(frozen=True)
class Routines:
    """Addresses of OpenBLAS's ``cblas_sgemm`` and ``cblas_sgemv``, and whether they take 64-bit sizes."""

    sgemm: int
    sgemv: int
    ilp64: bool  # a USE64BITINT build


@dataclass(frozen=True)
class _OpenBLAS:
    get_threads: Callable[[], int]
    set_threads: Callable[[int], None]
    routines: Routines


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process, numpy's own first."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    paths = {line.split(maxsplit=5)[-1] for line in lines if line.count(" ") >= 5}
    numpy_dir = str(Path(np.__file__).parent)  # a prefix of numpy's wheel's numpy.libs/ too
    found = [p for p in paths if "openblas" in Path(p).name.lower()]
    return sorted(found, key=lambda p: (not p.startswith(numpy_dir), p))


def _address(function: object) -> int:
    return ctypes.cast(function, ctypes.c_void_p).value or 0  # type: ignore[arg-type]


def _functions(library: ctypes.CDLL) -> _OpenBLAS | None:
    for prefix, suffix in _AFFIXES:
        names = [
            f"{prefix}{name}{suffix}"
            for name in ("openblas_get_num_threads", "openblas_set_num_threads", "openblas_get_config")
        ]
        names += [f"{prefix}cblas_{name}{suffix}" for name in ("sgemm", "sgemv")]
        if not all(hasattr(library, name) for name in names):
            continue
        get_threads, set_threads, config, sgemm, sgemv = (getattr(library, name) for name in names)
        get_threads.argtypes, get_threads.restype = [], ctypes.c_int
        set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
        config.argtypes, config.restype = [], ctypes.c_char_p
        ilp64 = b"USE64BITINT" in (config() or b"")
        return _OpenBLAS(get_threads, set_threads, Routines(_address(sgemm), _address(sgemv), ilp64))
    return None


@functools.cache
def _openblas() -> _OpenBLAS | None:
    for path in _loaded_openblas():
        try:
            found = _functions(ctypes.CDLL(path))
        except OSError:
            continue
        if found is not None:
            return found
    return None


def blas_threads() -> int:
    """numpy's BLAS thread count now, or the count :func:`single_threaded` found (inside it); under a
    microsecond: read again on every call."""
    blas = _openblas()
    if blas is not None:
        return max(1, _single_saved if _single_depth else int(blas.get_threads()))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def routines() -> Routines | None:
    """numpy's OpenBLAS ``cblas_sgemm`` and ``cblas_sgemv``; None where numpy's BLAS is not one found."""
    blas = _openblas()
    return None if blas is None or not (blas.routines.sgemm and blas.routines.sgemv) else blas.routines


_single = threading.Lock()
_single_depth = 0  # callers inside single_threaded now
_single_saved = 1  # the thread count the first of them found


@contextmanager
def single_threaded() -> Iterator[None]:
    """OpenBLAS set to one thread inside, its thread count restored when the last caller inside leaves
    (for the whole process: another Python thread's BLAS calls meanwhile run single-threaded too)."""
    global _single_depth, _single_saved
    blas = _openblas()
    if blas is None:
        yield
        return
    with _single:
        if _single_depth == 0:
            _single_saved = blas.get_threads()
            blas.set_threads(1)
        _single_depth += 1
    try:
        yield
    finally:
        with _single:
            _single_depth -= 1
            if _single_depth == 0:
                blas.set_threads(_single_saved)
