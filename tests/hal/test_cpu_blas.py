"""numpy's OpenBLAS seen from the cpu device: its thread count follows threadpoolctl, its sgemm is found."""

from __future__ import annotations

import os

import numpy as np
import pytest

from accelerate_lab.hal import cpu_blas


def openblas_threads() -> int:
    """The thread count numpy's OpenBLAS itself runs with now."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    numpy_dir = os.path.dirname(np.__file__)  # a prefix of numpy's wheel's numpy.libs/ too
    (count,) = (
        p["num_threads"]
        for p in threadpoolctl.threadpool_info()
        if p["internal_api"] == "openblas" and p["filepath"].startswith(numpy_dir)
    )
    return int(count)


def test_thread_count_follows_threadpool_limits_and_single_threaded_restores_it() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if cpu_blas.routines() is None:
        pytest.skip(f"numpy's BLAS is not an OpenBLAS: {np.show_config(mode='dicts')['Build Dependencies']}")
    with threadpoolctl.threadpool_limits(2, "blas"):
        assert cpu_blas.blas_threads() == 2
        with cpu_blas.single_threaded():
            # OpenBLAS runs on one thread; the compiled kernels still split their work over two
            assert openblas_threads() == 1
            assert cpu_blas.blas_threads() == 2
        assert cpu_blas.blas_threads() == 2
    with threadpoolctl.threadpool_limits(1, "blas"):
        assert cpu_blas.blas_threads() == 1


def test_without_openblas_the_cpus_are_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_blas, "_openblas", lambda: None)
    assert cpu_blas.routines() is None
    assert cpu_blas.blas_threads() == len(os.sched_getaffinity(0))
    with cpu_blas.single_threaded():  # nothing to set
        assert cpu_blas.blas_threads() >= 1


def test_nested_and_concurrent_single_threaded_sections_restore_the_count_once() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if cpu_blas.routines() is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS")
    with threadpoolctl.threadpool_limits(3, "blas"):
        outer = cpu_blas.single_threaded()
        inner = cpu_blas.single_threaded()
        outer.__enter__()
        inner.__enter__()  # as a second Python thread would, while the first is inside
        outer.__exit__(None, None, None)
        assert openblas_threads() == 1  # the other caller is still inside
        assert cpu_blas.blas_threads() == 3  # the compiled kernels' count meanwhile
        inner.__exit__(None, None, None)
        assert openblas_threads() == 3 == cpu_blas.blas_threads()
