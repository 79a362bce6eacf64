"""Benchmark the wgpu device against numpy in the same run: matmul GFLOP/s, elementwise GB/s, row kernels.

    python bench/bench_wgpu.py                    # sizes picked for the adapter (small on CPU adapters)
    python bench/bench_wgpu.py --matmul 4096 --elements 67108864 --peak-gflops 66900 --peak-gbs 3350
    python bench/bench_wgpu.py --matmul-configs "16,8,8 a128,128,16 a128,64,16"  # both matmul kernels
    python bench/bench_wgpu.py --cases rows --elements 67108864  # row kernels, both reduction variants

Prints one table (case, ours, numpy baseline, ratio) and the machine: CPU count and adapter. Times
are medians of several repeats. The device is lazy and skips values nobody holds, so each result
is computed before the next replaces it; reading back one element of the last waits for them all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import accelerate_lab as al
from accelerate_lab.hal import wgpu_kernels
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer
from accelerate_lab.hal.wgpu_device import WgpuDevice


@dataclass
class Row:
    case: str
    ours_s: float
    base_s: float
    work: float  # FLOPs or bytes of one run
    unit: str  # "GFLOP/s" or "GB/s"


def _median(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync(t: al.Tensor) -> None:
    t[(0,) * t.rank].numpy()  # a one-element readback waits for all submitted work


def _ours(dev: WgpuDevice, fn: Callable[[], al.Tensor], repeats: int, inner: int) -> float:
    """Seconds per ``fn()``. The device records ops lazily and computes only values still held, so
    each result is computed (recorded for the one submission) before the next replaces it."""

    def run() -> None:
        out = None
        for _ in range(inner):
            out = fn()
            assert isinstance(out._buf, WgpuBuffer)
            dev.graph.concrete(out._buf)
        assert out is not None
        _sync(out)

    return _median(run, repeats) / inner


def _rate(work: float, seconds: float, unit: str) -> float:
    return work / seconds / 1e9


Config = tuple[str, tuple[int, int, int], dict[str, int]]


def _config(text: str) -> Config:
    """``"16,8,8"``: matmul.wgsl's (threads, outputs per thread, K step); ``"a128,128,16"``:
    matmul_aligned.wgsl's block tile (rows, columns, K step), optionally followed by its override
    options, e.g. ``"a128,128,8,u4,g8"``: UNROLL 4, GROUP 8 (t1: TRUSTED)."""
    shader = "matmul_aligned.wgsl" if text.startswith("a") else "matmul.wgsl"
    first, second, third, *rest = text.removeprefix("a").split(",")
    names = {"u": "UNROLL", "g": "GROUP", "t": "TRUSTED"}
    options = {names[x[0]]: int(x[1:]) for x in rest}
    return shader, (int(first), int(second), int(third)), options


def bench(args: argparse.Namespace) -> list[Row]:
    dev = al.get_device("wgpu")
    assert isinstance(dev, WgpuDevice)
    rng = np.random.default_rng(0)
    parts = {"matmul": _matmul_cases, "elementwise": _elementwise_cases, "rows": _row_cases}
    return [row for name in args.cases.split(",") for row in parts[name](dev, args, rng)]


def _matmul_cases(dev: WgpuDevice, args: argparse.Namespace, rng: np.random.Generator) -> list[Row]:
    rows: list[Row] = []
    n = args.matmul
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = al.tensor(a, device=dev), al.tensor(b, device=dev)
    base = _median(lambda: a @ b, args.repeats)
    expected = a @ b
    configs = [_config(c) for c in args.matmul_configs.split()]
    general, aligned = dev.runtime.matmul_config, dev.runtime.matmul_aligned_config
    options = dev.runtime.matmul_aligned_options
    configs = configs or [("matmul.wgsl", general, {})]
    if not args.matmul_configs and aligned is not None:
        configs.append(("matmul_aligned.wgsl", aligned, options))
    timed: dict[str, float] = {}
    for shader, config, extra in configs:
        if shader == "matmul.wgsl":
            dev.runtime.matmul_config, dev.runtime.matmul_aligned_config = config, None
        else:
            dev.runtime.matmul_config, dev.runtime.matmul_aligned_config = general, config
            dev.runtime.matmul_aligned_options = extra
        name = f"{shader} tile {config}" + "".join(f" {k[0].lower()}{v}" for k, v in extra.items())
        before = dict(wgpu_kernels.matmul_dispatches)
        try:
            error = np.abs((ta @ tb).numpy() - expected).max() / np.abs(expected).max()
        except ValueError as e:  # a tile the kernel's constraints or this adapter's limits refuse
            print(f"{name}: {e}", flush=True)
            continue
        ran = sorted(k for k, v in wgpu_kernels.matmul_dispatches.items() if v > before.get(k, 0))
        print(f"{name}: ran {ran}, max |ours - numpy| / max |numpy| = {error:.1e}", flush=True)
        if not error < 1e-5 or ran != [shader]:
            continue  # a wrong kernel gets no timing
        timed[name] = _ours(dev, lambda: ta @ tb, args.repeats, args.inner)
        label = f"matmul {n}^3 f32 {name.replace('.wgsl tile', '')}"
        rows.append(Row(label, timed[name], base, 2.0 * n**3, "GFLOP/s"))
    dev.runtime.matmul_config, dev.runtime.matmul_aligned_config = general, aligned
    dev.runtime.matmul_aligned_options = options
    if not timed:
        raise SystemExit("every matmul tile config gave wrong results")
    return rows


def _elementwise_cases(dev: WgpuDevice, args: argparse.Namespace, rng: np.random.Generator) -> list[Row]:
    rows: list[Row] = []
    m = args.elements
    x = rng.standard_normal(m, dtype=np.float32)
    y = rng.standard_normal(m, dtype=np.float32)
    tx, ty = al.tensor(x, device=dev), al.tensor(y, device=dev)
    rows.append(
        Row(
            f"add {m} f32",
            _ours(dev, lambda: tx + ty, args.repeats, args.inner),
            _median(lambda: x + y, args.repeats),
            3.0 * 4 * m,
            "GB/s",
        )
    )
    rows.append(
        Row(
            f"fused relu(x*2+1)*y {m} f32",
            _ours(dev, lambda: al.relu(tx * 2 + 1) * ty, args.repeats, args.inner),
            _median(lambda: np.maximum(x * 2 + 1, 0) * y, args.repeats),
            3.0 * 4 * m,
            "GB/s",
        )
    )
    side = int(np.sqrt(m))
    s = x[: side * side].reshape(side, side)
    ts = al.tensor(s, device=dev)
    rows.append(
        Row(
            f"transpose copy {side}x{side} f32",
            _ours(dev, lambda: ts.T.clone(), args.repeats, args.inner),
            _median(lambda: np.ascontiguousarray(s.T), args.repeats),
            2.0 * 4 * side * side,
            "GB/s",
        )
    )
    return rows


def _row_cases(dev: WgpuDevice, args: argparse.Namespace, rng: np.random.Generator) -> list[Row]:
    """rows.wgsl over ``--elements`` in rows of ``--row-length`` (default: a square), with each
    workgroup_reduce.wgsl variant the adapter has (subgroup operations, the shared-memory tree); GB/s
    counts reading the input once and writing the output once."""
    n = args.row_length or int(np.sqrt(args.elements))
    s = rng.standard_normal((args.elements // n, n), dtype=np.float32)
    ts = al.tensor(s, device=dev)

    def softmax() -> np.ndarray:
        e = np.exp(s - s.max(-1, keepdims=True))
        out: np.ndarray = e / e.sum(-1, keepdims=True)
        return out

    cases: list[tuple[str, Callable[[], al.Tensor], Callable[[], object], float]] = [
        ("sum axis -1", lambda: al.sum(ts, -1), lambda: s.sum(-1), 1.0),
        ("max axis -1", lambda: al.max(ts, -1), lambda: s.max(-1), 1.0),
        ("argmax axis -1", lambda: al.argmax(ts, -1), lambda: s.argmax(-1), 1.0),
        ("softmax", lambda: al.softmax(ts, -1), softmax, 2.0),
    ]
    variants = [True, False] if dev.runtime.profile.subgroups else [False]
    chosen = dev.runtime.subgroups
    rows: list[Row] = []
    for case, ours, numpy_fn, passes in cases:
        base = _median(numpy_fn, args.repeats)
        for subgroups in variants:
            dev.runtime.subgroups = subgroups
            expected, actual = np.asarray(numpy_fn()), ours().numpy()
            error = np.abs(actual - expected).max() / np.abs(expected).max()
            assert error < 1e-4, f"{case}: max |ours - numpy| / max |numpy| = {error:.1e}"
            seconds = _ours(dev, ours, args.repeats, args.inner)
            variant = "subgroups" if subgroups else "shared memory"
            rows.append(
                Row(f"{case} {s.shape[0]}x{n} f32 [{variant}]", seconds, base, passes * 4 * s.size, "GB/s")
            )
    dev.runtime.subgroups = chosen
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--matmul", type=int, default=0, help="matrix side (default: 256 on CPU adapters, 4096 on GPUs)"
    )
    parser.add_argument("--elements", type=int, default=0, help="elementwise length (default: 2**20 / 2**26)")
    parser.add_argument(
        "--matmul-configs",
        default="",
        help='tile configs to compare, e.g. "16,8,8 16,8,16 a128,128,16 a128,128,8,u8,g8" (a: the aligned '
        "kernel's tile, then its options: u<UNROLL>, g<GROUP>, t1 (trusted: no runtime checks))",
    )
    parser.add_argument(
        "--cases", default="matmul,elementwise,rows", help="comma-separated: matmul, elementwise, rows"
    )
    parser.add_argument(
        "--row-length", type=int, default=0, help="row length of the row cases (default: a square matrix)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--inner", type=int, default=0, help="ops per timed repeat (default: 1 on CPU adapters, 10 on GPUs)"
    )
    parser.add_argument(
        "--peak-gflops", type=float, default=0.0, help="the card's float32 peak, to print a share"
    )
    parser.add_argument(
        "--peak-gbs", type=float, default=0.0, help="the card's memory bandwidth, to print a share"
    )
    args = parser.parse_args()
    dev = al.get_device("wgpu")
    assert isinstance(dev, WgpuDevice)
    software = dev.runtime.profile.is_software
    args.matmul = args.matmul or (256 if software else 4096)
    args.elements = args.elements or (1 << 20 if software else 1 << 26)
    args.inner = args.inner or (1 if software else 10)
    rows = bench(args)
    p = dev.runtime.profile
    print(
        f"machine: {os.cpu_count()} CPU cores; adapter {p.device!r} "
        f"({p.adapter_type}, {p.backend}, {p.driver})"
    )
    header = (
        f"{'case':<50} {'ours ms':>10} {'ours rate':>16} {'numpy ms':>10} {'numpy rate':>16} {'ratio':>7}"
    )
    if args.peak_gflops or args.peak_gbs:
        header += f" {'of peak':>8}"
    print(header)
    for r in rows:
        ours, base = _rate(r.work, r.ours_s, r.unit), _rate(r.work, r.base_s, r.unit)
        line = (
            f"{r.case:<50} {r.ours_s * 1e3:>10.3f} {ours:>8.1f} {r.unit:<7} {r.base_s * 1e3:>10.3f} "
            f"{base:>8.1f} {r.unit:<7} {r.base_s / r.ours_s:>7.2f}"
        )
        peak = args.peak_gflops if r.unit == "GFLOP/s" else args.peak_gbs
        if peak:
            line += f" {ours / peak:>8.1%}"
        print(line)
    print("ratio = numpy time / ours (above 1: the wgpu device is faster)")
    shared = {
        r.case.removesuffix(" [shared memory]"): r.ours_s for r in rows if r.case.endswith("[shared memory]")
    }
    for r in rows:
        case = r.case.removesuffix(" [subgroups]")
        if case != r.case and case in shared:
            print(f"{case}: subgroups {shared[case] / r.ours_s:.2f}x the speed of the shared-memory tree")


if __name__ == "__main__":
    main()
