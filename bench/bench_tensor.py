"""Tensor ops on the cpu device against raw numpy on the same data, in the same run.

Prints one table: op, elements, ours and numpy (median microseconds per call), the ratio, and the
fixed overhead (ours - numpy). Goals: ratio <= 1.10 at 1e5 elements and up, overhead <= 3 us.

    python bench/bench_tensor.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import timeit
from collections.abc import Callable

import numpy as np

import accelerate_lab as al

Case = tuple[str, int, Callable[[], object], Callable[[], object]]


# numpy's stubs type keepdims reductions and ufuncs on them as Any: the results get typed locals


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def _np_layer_norm(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-5)
    return out


def _np_gelu_tanh(x: np.ndarray) -> np.ndarray:
    c = np.float32(math.sqrt(2 / math.pi))
    out: np.ndarray = np.float32(0.5) * x * (1 + np.tanh(c * (x + np.float32(0.044715) * x**3)))
    return out


def elementwise_cases(n: int) -> list[Case]:
    rng = np.random.default_rng(0)
    a_np, b_np = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    rows = a_np.reshape(-1, 100) if n >= 100 else a_np.reshape(1, -1)
    a, b, r = al.tensor(a_np), al.tensor(b_np), al.tensor(rows)
    return [
        ("add", n, lambda: a + b, lambda: a_np + b_np),
        ("mul scalar", n, lambda: a * 2.0, lambda: a_np * 2.0),
        ("exp", n, lambda: al.exp(a), lambda: np.exp(a_np)),
        ("relu", n, lambda: al.relu(a), lambda: np.maximum(a_np, np.float32(0))),
        ("gelu tanh", n, lambda: al.gelu(a, approximate="tanh"), lambda: _np_gelu_tanh(a_np)),
        ("sum", n, lambda: al.sum(a), lambda: a_np.sum()),
        ("mean axis", n, lambda: al.mean(r, axis=-1), lambda: rows.mean(axis=-1)),
        ("max", n, lambda: al.max(a), lambda: a_np.max()),
        ("softmax rows", n, lambda: al.softmax(r), lambda: _np_softmax(rows)),
        ("layer_norm rows", n, lambda: al.layer_norm(r), lambda: _np_layer_norm(rows)),
        ("transpose+reshape", n, lambda: r.T.reshape(-1), lambda: rows.T.reshape(-1)),
    ]


def matmul_case(size: int) -> Case:
    rng = np.random.default_rng(size)
    x_np, y_np = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    x, y = al.tensor(x_np), al.tensor(y_np)
    return (f"matmul {size}^3", size * size, lambda: x @ y, lambda: x_np @ y_np)


def matmul_cases(sizes: list[int]) -> list[Case]:
    return [matmul_case(size) for size in sizes]


def median_us(fn: Callable[[], object], repeats: int) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return statistics.median(t / number for t in timer.repeat(repeats, number)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and no 2048 matmul")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    cases = [c for n in (100, 100_000, 1_000_000) for c in elementwise_cases(n)]
    cases += matmul_cases([256, 512, 1024] if args.quick else [256, 512, 1024, 2048])
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, numpy {np.__version__}, device cpu")
    print(f"{'op':<20}{'elements':>10}{'ours us':>12}{'numpy us':>12}{'ratio':>8}{'overhead us':>13}")
    for name, n, ours, baseline in cases:
        # interleave the two so drift on a shared machine hits both alike
        pairs = [(median_us(ours, repeats), median_us(baseline, repeats)) for _ in range(2)]
        t_ours, t_np = min(p[0] for p in pairs), min(p[1] for p in pairs)
        print(f"{name:<20}{n:>10}{t_ours:>12.2f}{t_np:>12.2f}{t_ours / t_np:>8.3f}{t_ours - t_np:>13.2f}")


if __name__ == "__main__":
    main()
