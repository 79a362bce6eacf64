"""The end-to-end tier: JupyterLab started here, a notebook that shows ``al.BrowserDevice()`` in headless
Chromium, moves random tensors to ``browser:webgpu``, runs ops there and checks them against numpy in a
later cell, and sends a 24 MiB tensor there and back through JupyterLab's default 10 MiB websocket
message limit: over HTTP where the server runs accelerate_lab's transfer extension, else through the comm
in chunks; the widget's screenshot is kept for a person to look at."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import numpy as np\nimport accelerate_lab as al\ndev = al.BrowserDevice()\ndev",
    "await dev.ready(timeout=60)\n"
    "rng = np.random.default_rng(1)\n"
    "a_host = rng.standard_normal((24, 16)).astype(np.float32)\n"
    "a = al.tensor(a_host, device='browser:webgpu')\n"
    "y = al.softmax(al.relu(a @ a.T), axis=-1)\n"
    "out = await y.numpy_async(timeout=60)\n"
    "print('computed on', y.device)",
    "z = np.maximum(a_host @ a_host.T, 0)\n"
    "ref = np.exp(z - z.max(-1, keepdims=True)); ref /= ref.sum(-1, keepdims=True)\n"
    "print('MATCHES NUMPY:', bool(np.allclose(out, ref, rtol=1e-5, atol=1e-6)), float(abs(out - ref).max()))",
    "big = rng.standard_normal(6 * 2**20).astype(np.float32)\n"
    "back = await al.tensor(big, device='browser:webgpu').numpy_async(timeout=120)\n"
    "print('LARGE ROUND TRIP:', bool(np.array_equal(back, big)), big.nbytes, 'via', dev.transfer)",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def jupyterlab(root: Path, *, transfer_server: bool = False) -> Iterator[tuple[str, str]]:
    """JupyterLab on a free port of 127.0.0.1, stopped afterwards; yields its URL and its token.
    ``transfer_server``: accelerate_lab's server extension (the BrowserDevice's HTTP path) on or off."""
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--allow-root",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    # explicit either way: `pip install` of the package enables the extension in the environment's config
    command.append(
        f"--ServerApp.jpserver_extensions={{'accelerate_lab.widgets.transfer_server': {transfer_server}}}"
    )
    log = (root / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"}
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start; see {root / 'jupyterlab.log'}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _notebook(path: Path) -> None:
    cells: list[dict[str, object]] = [
        {"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
        for c in CELLS
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(
        json.dumps({"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})
    )


def run_cell(page: Any, index: int, expect: str, timeout_ms: int) -> str:
    """Run one cell (pressing again if the key was missed); its outputs' text once ``expect`` or an error
    shows. A missed key leaves the prompt at ``[ ]:``; JupyterLab misses it now and then on a loaded machine.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # the tier skips when it is missing

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


@pytest.mark.parametrize("transfer", ["http", "comm"])
def test_notebook_runs_ops_in_the_browser_and_matches_numpy(
    chromium: Any, tmp_path: Path, transfer: str
) -> None:
    _notebook(tmp_path / "e2e.ipynb")
    with jupyterlab(tmp_path, transfer_server=transfer == "http") as (url, token):
        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        try:
            page.goto(f"{url}/lab/tree/e2e.ipynb?token={token}", timeout=90_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=90_000)
            run_cell(page, 0, "BrowserDevice", 120_000)
            widget = page.locator(".al-browser-device[data-status='ready']")
            widget.wait_for(timeout=60_000)
            # "Run All" races the browser's report: each cell runs after the previous one showed its output
            run_cell(page, 1, "computed on browser:webgpu", 120_000)
            text = run_cell(page, 2, "MATCHES NUMPY:", 60_000)
            large = run_cell(page, 3, "LARGE ROUND TRIP:", 120_000)
            widget.screenshot(path=str(tmp_path / "browser_device.png"))
            shot = os.environ.get("ACCELERATE_LAB_SCREENSHOTS")
            if shot:
                shutil.copy(tmp_path / "browser_device.png", Path(shot) / "browser_device.png")
            assert "MATCHES NUMPY: True" in text, text
            assert f"LARGE ROUND TRIP: True {24 * 2**20} via {transfer}" in large, large
            assert widget.get_attribute("data-transfer") == transfer
            assert "swiftshader" in widget.inner_text().lower()
        finally:
            page.close()
