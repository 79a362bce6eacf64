"""The browser device through the real widget connection: kernel -> browser -> kernel MB/s and per-op latency.

Starts JupyterLab on 127.0.0.1 (the end-to-end tier's helpers), opens a notebook in headless Debian
Chromium (SwiftShader WebGPU), shows ``al.BrowserDevice()`` and runs cells that upload a tensor to
``browser:webgpu`` and ``await t.numpy_async()`` it back, both ways the widget moves large tensors:
over HTTP through JupyterLab's server (accelerate_lab's transfer extension, enabled here) and
through the anywidget comm (binary buffers over the kernel's ZMQ and JupyterLab's websocket;
``dev.transfer = "comm"``). The cells time themselves in the kernel and print rows; this script
reads them from the notebook's outputs. Baselines, in the same kernel: the comm path; the same round
trip on the native ``wgpu`` device (lavapipe), or a numpy copy without it; and the ceiling of the
Jupyter comm path itself: a widget whose front end echoes each message back untouched, sent the same
chunked messages (``browser_chunks.split``) with no GPU work and no reassembly.
Prints one table: case, ours, baseline, ratio, machine. Goal: >= 200 MB/s round trip at 64 MB (HTTP).
``--profile N`` then runs N more 64 MB round trips over HTTP and prints the CPU seconds each took in
every process of the benchmark (from ``/proc``: the kernel, JupyterLab, each Chromium process by its
role), to show where the time goes.

    python bench/bench_browser.py [--repeats N] [--max-message-mb M] [--profile N]

``--max-message-mb`` raises JupyterLab's websocket message limit (0 keeps tornado's default, 10 MiB);
transfers are chunked to fit the default, so it changes nothing but the server's setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the end-to-end tier's helpers live in tests/

from playwright.sync_api import sync_playwright

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_jupyterlab import jupyterlab, run_cell

SETUP = """\
import asyncio, anywidget, numpy as np
import accelerate_lab as al
from accelerate_lab.hal.browser_chunks import split

class Echo(anywidget.AnyWidget):
    _esm = \"\"\"export default { initialize({ model }) {
        model.on('msg:custom', (content, buffers) => model.send(content, undefined, buffers));
    } };\"\"\"

echo, echoed = Echo(), []

def _arrived(_widget, content, _buffers):
    if content["kind"] != "chunk" and echoed and not echoed[-1].done():
        echoed[-1].set_result(None)  # the last message of a transfer came back

echo.on_msg(_arrived)
dev = al.BrowserDevice(timeout=120)
dev"""
MEASURE = """\
import contextlib, statistics, time
await dev.ready(timeout=60)
assert dev.transfer == "http", (dev.transfer, dev.transfer_message)
baseline = "cpu"
with contextlib.suppress(al.DeviceError):
    al.hal.get_device("wgpu")
    baseline = "wgpu"

async def echo_trip(data, timeout=120):
    echoed.append(asyncio.get_running_loop().create_future())
    for message in split({"kind": "echo"}, [memoryview(data).cast("B")], transfer=len(echoed)):
        echo.send(*message)
    await asyncio.wait_for(echoed[-1], timeout)

for _ in range(30):  # the echo's front end starts with the page's widget manager: wait for it
    with contextlib.suppress(TimeoutError):
        await echo_trip(np.ones(1, np.float32), timeout=2)
        break

async def seconds(make, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = await make()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

def round_trip(device, data, transfer="http"):
    async def run():
        dev.transfer = transfer
        try:
            out = await al.tensor(data, device=device).numpy_async(timeout=120)
        finally:
            dev.transfer = "http"
        assert np.array_equal(out, data)
    return run

rows = []
for megabytes in (1, 16, 64):
    data = np.random.default_rng(0).standard_normal(megabytes * 2**18).astype(np.float32)
    ours = await seconds(round_trip("browser:webgpu", data), REPEATS)
    comm = await seconds(round_trip("browser:webgpu", data, "comm"), REPEATS)
    base = await seconds(round_trip(baseline, data), REPEATS)
    ceiling = await seconds(lambda: echo_trip(data), REPEATS)
    case, rate = f"round trip {megabytes} MB", f"{megabytes / ours:.0f}"
    rows.append((f"{case} http vs comm (MB/s)", rate, f"{megabytes / comm:.0f}", comm / ours))
    rows.append((f"{case} http vs {baseline} (MB/s)", rate, f"{megabytes / base:.0f}", base / ours))
    comm_rate, echo_rate = f"{megabytes / comm:.0f}", f"{megabytes / ceiling:.0f}"
    rows.append((f"{case} comm vs comm echo (MB/s)", comm_rate, echo_rate, ceiling / comm))
small = np.ones(1024, np.float32)
x, y = al.tensor(small, device="browser:webgpu"), al.tensor(small, device=baseline)
async def baseline_op():
    return (y + 1.0).numpy()
ours = await seconds(lambda: (x + 1.0).numpy_async(timeout=60), max(REPEATS, 20))
base = await seconds(baseline_op, max(REPEATS, 20))
ceiling = await seconds(lambda: echo_trip(small), max(REPEATS, 20))
case, latency = "add + download, 1024 el. vs", f"{ours * 1e3:.2f}"
rows.append((f"{case} {baseline} (ms)", latency, f"{base * 1e3:.2f}", base / ours))
rows.append((f"{case} comm echo (ms)", latency, f"{ceiling * 1e3:.2f}", ceiling / ours))
machine = (dev.adapter.get("vendor"), dev.adapter.get("architecture"))
for row in rows:
    print("BENCH|" + "|".join(str(v) for v in (*row, *machine)))
print("BENCH DONE")
"""
PROFILE = """\
import collections, contextlib, os, time

def _stat(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])  # parent, user + system ticks

def _cpu():
    # CPU seconds of each process of this benchmark (the tree under JupyterLab's parent: the script,
    # JupyterLab, this kernel, Playwright's driver, Chromium), by its role in the transfer
    tick, tree, ticks = os.sysconf("SC_CLK_TCK"), collections.defaultdict(list), {}
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        with contextlib.suppress(OSError):
            parent, ticks[pid] = _stat(pid)
            tree[parent].append(pid)
    out, todo = {}, [_stat(os.getppid())[0]]
    while todo:
        pid = todo.pop()
        todo += tree[pid]
        with contextlib.suppress(OSError):
            argv = open(f"/proc/{pid}/cmdline").read().replace("\\0", " ").split() or [""]
            out[pid] = (_role(pid, argv), ticks[pid] / tick)
    return out

def _role(pid, argv):
    if pid == os.getpid():
        return "kernel"
    if pid == os.getppid():
        return "jupyter server"
    if "chromium" in argv[0] or "chrome" in argv[0]:
        if any("NetworkService" in a for a in argv):
            return "chromium network service"
        return "chromium " + next((a[7:] for a in argv if a.startswith("--type=")), "browser")
    return "other: " + os.path.basename(argv[0])

data = np.random.default_rng(0).standard_normal(64 * 2**18).astype(np.float32)
trip = round_trip("browser:webgpu", data)
await trip()
before, start = _cpu(), time.perf_counter()
for _ in range(PROFILE):
    await trip()
wall = (time.perf_counter() - start) / PROFILE
used = collections.Counter()
for pid, (role, seconds) in _cpu().items():
    used[role] += seconds - before.get(pid, (role, 0.0))[1]
for role, seconds in used.most_common():
    print(f"CPU|{role}|{seconds / PROFILE:.3f}")
print(f"CPU|total|{sum(used.values()) / PROFILE:.3f}")
print(f"CPU|wall per round trip|{wall:.3f}")
print("CPU DONE")
"""


def _notebook(path: Path, repeats: int, profile: int) -> None:
    sources = [SETUP, MEASURE.replace("REPEATS", str(repeats)), PROFILE.replace("PROFILE", str(profile))]
    cells: list[dict[str, object]] = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))


def _dismiss_dialogs(page: Any) -> None:
    """Close a dialog JupyterLab opened at start (it would take the clicks that run the cells)."""
    page.wait_for_timeout(2000)
    for dialog in page.locator(".jp-Dialog").all():
        print(f"closing a JupyterLab dialog: {dialog.inner_text()[:200]!r}", file=sys.stderr)
        page.keyboard.press("Escape")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-message-mb", type=int, default=0)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        root = Path(tmp)
        _notebook(root / "bench.ipynb", args.repeats, args.profile)
        if args.max_message_mb:  # JupyterLab reads its settings from this folder (it inherits our env)
            settings = {"websocket_max_message_size": args.max_message_mb * 2**20}
            (root / "config").mkdir()
            config = {"ServerApp": {"tornado_settings": settings}}
            (root / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
            os.environ["JUPYTER_CONFIG_DIR"] = str(root / "config")
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        with jupyterlab(root, transfer_server=True) as (url, token):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{url}/lab/tree/bench.ipynb?token={token}", timeout=120_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
                timeout=120_000
            )
            _dismiss_dialogs(page)
            run_cell(page, 0, "BrowserDevice", 120_000)
            page.locator(".al-browser-device[data-status='ready']").wait_for(timeout=60_000)
            text = run_cell(page, 1, "BENCH DONE", 400_000)
            if args.profile:
                text += "\n" + run_cell(page, 2, "CPU DONE", 400_000)
        browser.close()
    rows = [line.split("|")[1:] for line in text.splitlines() if line.startswith("BENCH|")]
    if not rows:
        sys.exit(f"the notebook printed no rows:\n{text}")
    vendor, architecture = rows[0][4:6]
    machine = f"{os.cpu_count()} CPUs, {platform.machine()}; browser: Chromium {vendor} {architecture}"
    print(f"{'case':46} {'ours':>8} {'baseline':>9} {'ratio':>7}  machine")
    for case, ours, base, ratio, *_ in rows:
        print(f"{case:46} {ours:>8} {base:>9} {float(ratio):7.2f}  {machine}")
    unmet = [r for r in rows if re.match(r"round trip 64 MB http vs comm", r[0]) and float(r[1]) < 200]
    if unmet:
        print(f"goal not met: {unmet[0][1]} MB/s round trip at 64 MB (goal 200)")
    split = [line.split("|")[1:] for line in text.splitlines() if line.startswith("CPU|")]
    if split:
        print(f"\nCPU seconds per 64 MB round trip over HTTP (mean of {args.profile}), by process:")
        for role, seconds in split:
            print(f"  {role:32} {float(seconds):6.3f}")


if __name__ == "__main__":
    main()
