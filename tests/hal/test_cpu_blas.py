"""numpy's OpenBLAS seen from the cpu device: its thread count follows threadpoolctl, its sgemm is found."""

from __future__ import annotations

import os

import numpy as np
import pytest

from accelerate_lab.hal import cpu_blas


def test_thread_count_follows_threadpool_limits_and_single_threaded_restores_it() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if cpu_blas.routines() is None:
        pytest.skip(f"numpy's BLAS is not an OpenBLAS: {np.show_config(mode='dicts')['Build Dependencies']}")
    with threadpoolctl.threadpool_limits(2, "blas"):
        assert cpu_blas.blas_threads() == 2
        with cpu_blas.single_threaded():
            assert cpu_blas.blas_threads() == 1
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
        assert cpu_blas.blas_threads() == 1  # the other caller is still inside
        inner.__exit__(None, None, None)
        assert cpu_blas.blas_threads() == 3
