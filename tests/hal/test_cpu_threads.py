"""The compiled cpu kernels' threads: the same results on one thread and on several, a forked child
that starts its own threads, and numpy's BLAS thread count left as it was."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from typing import Literal

import numpy as np
import pytest

from accelerate_lab.hal import cpu_blas, cpu_nn
from tests.hal.test_cpu_kernels import attention, run

# numpy's kernels have no threads of their own: these tests need the compiled ones
pytestmark = pytest.mark.usefixtures("compiled_kernels")


def _matrices(*shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Fresh standard-normal float32 arrays of ``shapes``."""
    rng = np.random.default_rng()
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


def _gelu_or_exit(x: np.ndarray, expected: np.ndarray) -> None:
    """In a forked child: exit 1 unless the threaded gelu of ``x`` is ``expected``."""
    sys.exit(0 if np.array_equal(run("gelu", x, approximate="none"), expected) else 1)


def _name(task: str) -> str:
    """The name of this process's thread ``task`` (a /proc/self/task entry)."""
    with open(f"/proc/self/task/{task}/comm") as f:
        return f.read().strip()


def _on_hypervisor() -> bool:
    """Whether /proc/cpuinfo's flags say this runs on a virtual machine (x86's hypervisor bit)."""
    with open("/proc/cpuinfo") as f:
        return any(line.startswith("flags") and " hypervisor" in line for line in f)


def _cpu() -> int:
    """The CPU this thread last ran on (field 39 of /proc/thread-self/stat)."""
    with open("/proc/thread-self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


class TestThreads:
    """The compiled kernels split their work over numpy's BLAS thread count: three threads here, on
    sizes no split divides evenly, against one thread (the numpy path for matmul)."""

    @staticmethod
    def both(kernel: str, *inputs: np.ndarray | None, **params: object) -> tuple[np.ndarray, np.ndarray]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cpu_nn, "blas_threads", lambda: 1)
            single = run(kernel, *inputs, **params)
            patch.setattr(cpu_nn, "blas_threads", lambda: 3)
            return single, run(kernel, *inputs, **params)

    def test_elementwise_and_row_kernels_give_the_same_bits(self) -> None:
        rng = np.random.default_rng()
        x = (rng.standard_normal((2003, 97)) * 4).astype(np.float32)  # rows per thread: 667, 668, 668
        w, b = rng.standard_normal(97).astype(np.float32), rng.standard_normal(97).astype(np.float32)
        mask = rng.standard_normal((1, 97)).astype(np.float32)
        cases: list[tuple[str, tuple[np.ndarray, ...], dict[str, object]]] = [
            ("gelu", (x,), {"approximate": "none"}),
            ("add", (x, b), {}),
            ("add", (x, x[::-1].copy()), {}),
            ("layer_norm", (x, w, b), {"eps": 1e-5}),
            ("softmax", (x,), {"axis": 1}),
        ]
        for kernel, inputs, params in cases:
            single, threaded = self.both(kernel, *inputs, **params)
            np.testing.assert_array_equal(single, threaded, err_msg=kernel)
        single_masked = cpu_nn.softmax(x, 0.5, mask)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cpu_nn, "blas_threads", lambda: 3)
            np.testing.assert_array_equal(cpu_nn.softmax(x, 0.5, mask), single_masked)

    @pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
    def test_attention_gives_the_same_bits(self, mask_kind: str) -> None:
        rng = np.random.default_rng()
        q, k, v = rng.standard_normal((3, 5, 7, 130, 16)).astype(np.float32)  # 35 heads of 130 x 130
        masks = {
            "none": None,
            "bool": rng.random((5, 1, 1, 130)) > 0.2,
            "float": rng.standard_normal((130, 130)),
        }
        mask = masks[mask_kind]
        single, threaded = self.both("sdpa", q, k, v, mask, is_causal=mask_kind == "bool", scale=None)
        np.testing.assert_array_equal(single, threaded)
        np.testing.assert_allclose(
            threaded, attention(q, k, v, mask, mask_kind == "bool"), rtol=1e-4, atol=1e-5
        )

    def test_kernels_of_changing_thread_counts_in_quick_succession(self) -> None:
        """Each kernel's ranges go to its own threads only: a worker still finishing (or seeing) an
        earlier kernel of more threads takes none of a later one's (attention keeps scratch per thread)."""
        rng = np.random.default_rng()
        q, k, v = rng.standard_normal((3, 2, 6, 40, 16)).astype(np.float32)
        x = rng.standard_normal((700, 33)).astype(np.float32)
        single = [
            self.both("sdpa", q, k, v, None, is_causal=False, scale=None)[0],
            self.both("gelu", x, approximate="none")[0],
        ]
        with pytest.MonkeyPatch.context() as patch:
            for i in range(300):
                patch.setattr(cpu_nn, "blas_threads", lambda threads=(4, 2, 3)[i % 3]: threads)
                np.testing.assert_array_equal(
                    run("sdpa", q, k, v, None, is_causal=False, scale=None), single[0]
                )
                np.testing.assert_array_equal(run("gelu", x, approximate="none"), single[1])

    def test_matmul_split_by_rows_gives_numpys_bits(self) -> None:
        was = cpu_nn.amx()
        cpu_nn.amx(False)  # OpenBLAS's split (AMX's products: tests/hal/test_cpu_amx.py)
        try:
            for m, k, n in [(2003, 97, 129), (1000, 33, 517), (600, 384, 1152)]:
                a, b = _matrices((m, k), (k, n))
                single, threaded = self.both("matmul", a, b)
                np.testing.assert_array_equal(single, threaded)
        finally:
            cpu_nn.amx(was)

    def test_matmul_of_few_rows_split_by_columns(self) -> None:
        # fewer than 512 rows (a 128-token layer): each thread takes columns of b (whole tiles of 8 x 48
        # by the compiled panel kernel, the last rows and columns by sgemm), against one thread (numpy's
        # sgemm): float32 sums in another order, within a few units of float32 rounding of the largest
        for m, k, n in [(129, 384, 1152), (31, 400, 3000), (100, 64, 1000)]:
            a, b = _matrices((m, k), (k, n))
            single, threaded = self.both("matmul", a, b)
            reference = a.astype(np.float64) @ b
            largest = np.abs(reference).max()
            assert np.abs(threaded - reference).max() <= 4e-6 * largest  # measured up to 8e-7
            assert np.abs(threaded - single).max() <= 4e-6 * largest

    @pytest.mark.parametrize("layout", ["C", "F"])
    def test_matmul_of_a_single_row_split_by_columns(self, layout: str) -> None:
        # Whisper's vocabulary projection: a row times the transposed embedding table, by sgemv
        rng = np.random.default_rng()
        order: Literal["C", "F"] = "C" if layout == "C" else "F"
        a = rng.standard_normal((1, 300)).astype(np.float32)
        b = np.asarray(rng.standard_normal((300, 20011)), np.float32, order)
        single, threaded = self.both("matmul", a, b)
        np.testing.assert_allclose(threaded, single, rtol=1e-5, atol=1e-5)

    def test_a_forked_child_starts_its_own_threads(self) -> None:
        x = np.random.default_rng().standard_normal((2003, 97)).astype(np.float32)
        single, _ = self.both("gelu", x, approximate="none")  # the parent's workers exist now
        context = multiprocessing.get_context("fork")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cpu_nn, "blas_threads", lambda: 3)
            child = context.Process(target=_gelu_or_exit, args=(x, single), daemon=True)
            child.start()
            child.join(timeout=60)
        if child.exitcode is None:  # hung, waiting for threads it does not have
            child.kill()
        assert child.exitcode == 0

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are placed on Linux only")
    def test_woken_workers_are_placed_off_the_callers_cpu(self) -> None:
        """A virtual machine's Linux would wake them on the caller's CPU (see place_workers in nn.c)."""
        cpus = os.sched_getaffinity(0)
        if len(cpus) < 2:
            pytest.skip("one CPU: nowhere else to place a worker")
        if not _on_hypervisor():
            pytest.skip("real hardware: Linux places the workers itself")
        x = np.random.default_rng().standard_normal((4096, 64)).astype(np.float32)
        self.both("gelu", x, approximate="none")  # the workers exist now
        placed: list[tuple[int, set[int]]] = []
        while len(placed) < 5:
            time.sleep(0.05)  # the workers spin 1 ms, then sleep
            caller = _cpu()
            single, threaded = self.both("gelu", x, approximate="none")
            np.testing.assert_array_equal(single, threaded)
            if _cpu() == caller:  # the caller stayed where it was
                workers = [task for task in os.listdir("/proc/self/task") if _name(task) == "accelerate-lab"]
                assert len(workers) >= 2
                placed += [(caller, os.sched_getaffinity(int(task))) for task in workers]
        assert all(len(cpu) == 1 and cpu <= cpus - {caller} for caller, cpu in placed)

    def test_matmul_leaves_blas_thread_count_alone(self) -> None:
        a = np.ones((256, 256), np.float32)
        before = cpu_blas.blas_threads()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cpu_nn, "blas_threads", lambda: 3)
            assert (run("matmul", a, a) == 256).all()
        assert cpu_blas.blas_threads() == before

    def test_fused_linear_split_by_rows_gives_the_same_bits(self) -> None:
        x, w, bias, residual = _matrices((2003, 97), (97, 129), (129,), (2003, 129))
        for activation in ("none", "gelu"):
            single, threaded = self.both("fused_linear", x, w, bias, residual, activation=activation)
            np.testing.assert_array_equal(single, threaded)
