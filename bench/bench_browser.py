"""The browser device through the real widget connection: kernel -> browser -> kernel MB/s and per-op latency.

Starts JupyterLab on 127.0.0.1 (the end-to-end tier's helpers), opens a notebook in headless Debian
Chromium (SwiftShader WebGPU), shows ``al.BrowserDevice()`` and runs cells that upload a tensor to
``browser:webgpu`` and ``await t.numpy_async()`` it back, through the anywidget comm (binary buffers
over the kernel's ZMQ and JupyterLab's websocket). The cells time themselves in the kernel and print
rows; this script reads them from the notebook's outputs. Baseline, in the same kernel: the same
round trip on the native ``wgpu`` device (lavapipe), or a numpy copy without it.
Prints one table: case, ours, baseline, ratio, machine. Goal: >= 200 MB/s round trip at 64 MB.

    python bench/bench_browser.py [--repeats N] [--max-message-mb M]

``--max-message-mb`` raises JupyterLab's websocket message limit (tornado's default is 10 MiB, and a
download comes back as one message); 0 keeps the default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the end-to-end tier's helpers live in tests/

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_jupyterlab import jupyterlab

SETUP = "import numpy as np\nimport accelerate_lab as al\ndev = al.BrowserDevice(timeout=120)\ndev"
MEASURE = """\
import contextlib, statistics, time
await dev.ready(timeout=60)
baseline = "cpu"
with contextlib.suppress(al.DeviceError):
    al.hal.get_device("wgpu")
    baseline = "wgpu"

async def seconds(make, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = await make()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

def round_trip(device, data):
    async def run():
        out = await al.tensor(data, device=device).numpy_async(timeout=120)
        assert out.shape == data.shape
    return run

rows = []
for megabytes in (1, 16, 64):
    data = np.random.default_rng(0).standard_normal(megabytes * 2**18).astype(np.float32)
    ours = await seconds(round_trip("browser:webgpu", data), REPEATS)
    base = await seconds(round_trip(baseline, data), REPEATS)
    rate, base_rate = f"{megabytes / ours:.0f}", f"{megabytes / base:.0f}"
    rows.append((f"round trip {megabytes} MB (MB/s)", rate, base_rate, base / ours))
small = np.ones(1024, np.float32)
x, y = al.tensor(small, device="browser:webgpu"), al.tensor(small, device=baseline)
async def baseline_op():
    return (y + 1.0).numpy()
ours = await seconds(lambda: (x + 1.0).numpy_async(timeout=60), max(REPEATS, 20))
base = await seconds(baseline_op, max(REPEATS, 20))
rows.append(("add + download, 1024 el. (ms)", f"{ours * 1e3:.2f}", f"{base * 1e3:.2f}", base / ours))
machine = (baseline, dev.adapter.get("vendor"), dev.adapter.get("architecture"))
for row in rows:
    print("BENCH|" + "|".join(str(v) for v in (*row, *machine)))
print("BENCH DONE")
"""


def _notebook(path: Path, repeats: int) -> None:
    sources = [SETUP, MEASURE.replace("REPEATS", str(repeats))]
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))


def _run_cell(page: Any, index: int, expect: str, timeout_ms: int) -> str:
    """Run one cell (pressing again if the key was missed); its output once ``expect`` or an error shows.

    A missed key leaves the prompt at ``[ ]:``; JupyterLab misses it now and then on a loaded machine.
    """
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(
                "(p) => p.textContent.trim() !== '[ ]:'", arg=prompt.element_handle(), timeout=10_000
            )
            break
    done = re.compile(f"{re.escape(expect)}|Error|Traceback")
    cell.locator(".jp-OutputArea-output", has_text=done).first.wait_for(timeout=timeout_ms)
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-message-mb", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        root = Path(tmp)
        _notebook(root / "bench.ipynb", args.repeats)
        if args.max_message_mb:  # JupyterLab reads its settings from this folder (it inherits our env)
            settings = {"websocket_max_message_size": args.max_message_mb * 2**20}
            (root / "config").mkdir()
            config = {"ServerApp": {"tornado_settings": settings}}
            (root / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
            os.environ["JUPYTER_CONFIG_DIR"] = str(root / "config")
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        with jupyterlab(root) as (url, token):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{url}/lab/tree/bench.ipynb?token={token}", timeout=120_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
                timeout=120_000
            )
            _run_cell(page, 0, "BrowserDevice", 120_000)
            page.locator(".al-browser-device[data-status='ready']").wait_for(timeout=60_000)
            text = _run_cell(page, 1, "BENCH DONE", 400_000)
        browser.close()
    rows = [line.split("|")[1:] for line in text.splitlines() if line.startswith("BENCH|")]
    if not rows:
        sys.exit(f"the notebook printed no rows:\n{text}")
    baseline, vendor, architecture = rows[0][4:7]
    machine = f"{os.cpu_count()} CPUs, {platform.machine()}; browser: Chromium {vendor} {architecture}"
    print(f"{'case':34} {'ours':>10} {'baseline (' + baseline + ')':>18} {'ratio':>7}  machine")
    for case, ours, base, ratio, *_ in rows:
        print(f"{case:34} {ours:>10} {base:>18} {float(ratio):7.2f}  {machine}")
    unmet = [r for r in rows if re.match(r"round trip 64 MB", r[0]) and float(r[1]) < 200]
    if unmet:
        print(f"goal not met: {unmet[0][1]} MB/s round trip at 64 MB (goal 200)")


if __name__ == "__main__":
    main()
