"""The browser device: kernel -> browser -> kernel transfer rate, and per-op latency, in headless Chromium.

Drives the BrowserDevice bundle in Debian's Chromium (SwiftShader WebGPU) through the fast tier's
page on 127.0.0.1 with a fake widget model. That page hands buffers across Playwright's JSON boundary
as base64 (the widget comm itself sends raw binary), so the rates here are a lower bound for a notebook.
Baseline: the same round trip on the native ``wgpu`` device (lavapipe), or a numpy copy without it.
Prints one table: case, ours, baseline, ratio, machine. Goal: >= 200 MB/s round trip at 64 MB.

    python bench/bench_browser.py [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fast tier's page harness lives in tests/

import accelerate_lab as al
from accelerate_lab.hal import get_device, register_device
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, connect, host, page_folder, serve


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _baseline_device() -> str:
    with contextlib.suppress(al.DeviceError):
        get_device("wgpu")
        return "wgpu"
    return "cpu"


def _round_trip(device: str, data: np.ndarray) -> Callable[[], object]:
    def run() -> object:
        t = al.tensor(data, device=device)
        out = host(t) if device.startswith("browser") else t.numpy()
        assert out.shape == data.shape
        return out

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    baseline = _baseline_device()
    rows: list[tuple[str, str, str, float]] = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        with serve(page_folder(Path(tmp))) as url:
            page = browser.new_page()
            page.goto(f"{url}/page.html")
            page.wait_for_function("window.pageReady === true")
            device, state = connect(page)
            register_device(device.name, lambda: device, replace=True)
            adapter = state.get("adapter", {})
            for megabytes in (1, 16, 64):
                data = np.random.default_rng(0).standard_normal(megabytes * 2**18).astype(np.float32)
                ours = _median_seconds(_round_trip(device.name, data), args.repeats)
                base = _median_seconds(_round_trip(baseline, data), args.repeats)
                rows.append(
                    (
                        f"round trip {megabytes} MB (MB/s)",
                        f"{megabytes / ours:.0f}",
                        f"{megabytes / base:.0f}",
                        base / ours,
                    )
                )
            small = np.ones(1024, np.float32)
            x, y = al.tensor(small, device=device.name), al.tensor(small, device=baseline)
            ours = _median_seconds(lambda: host(x + 1.0), max(args.repeats, 20))
            base = _median_seconds(lambda: (y + 1.0).numpy(), max(args.repeats, 20))
            rows.append(
                ("add + download, 1024 el. (ms)", f"{ours * 1e3:.2f}", f"{base * 1e3:.2f}", base / ours)
            )
            queued = _median_seconds(lambda: x * 2.0, max(args.repeats, 20))
            base = _median_seconds(lambda: y * 2.0, max(args.repeats, 20))
            rows.append(
                ("mul queued, no download (ms)", f"{queued * 1e3:.3f}", f"{base * 1e3:.3f}", base / queued)
            )
            assert isinstance(device, BrowserProxyDevice)
            browser.close()
    browser_name = f"{adapter.get('vendor')} {adapter.get('architecture')}"
    machine = f"{os.cpu_count()} CPUs, {platform.machine()}; browser: {browser_name}"
    print(f"{'case':34} {'ours':>10} {'baseline (' + baseline + ')':>18} {'ratio':>7}  machine")
    for case, ours_text, base_text, ratio in rows:
        print(f"{case:34} {ours_text:>10} {base_text:>18} {ratio:7.2f}  {machine}")


if __name__ == "__main__":
    main()
