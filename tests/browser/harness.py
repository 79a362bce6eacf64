"""Driving the BrowserDevice bundle in headless Chromium: a page on 127.0.0.1 with a fake widget model.

``PageTransport`` hands each batch to the page and feeds the replies straight back to the device, so
a download has arrived by the time ``flush`` returns, as it has in a later notebook cell; it keeps a
log of the commands and bytes that crossed. For the same reason an awaitable (``t.numpy_async()``)
never has to wait here: `complete` runs one to its end without an event loop (Playwright's sync
API refuses to run inside one).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from accelerate_lab import Tensor
from accelerate_lab.hal.browser_chunks import Assembler
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.hal.browser_errors import BrowserDataPending

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "accelerate_lab" / "static" / "browser_device.js"
CHROMIUM = Path(os.environ.get("ACCELERATE_LAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--enable-unsafe-webgpu",
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def serve(folder: Path, isolated: bool = False) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1 (a secure context, so WebGPU is exposed).

    ``isolated``: with COOP/COEP headers, so the page is cross-origin isolated (SharedArrayBuffer, hence
    WASM threads, and ``performance.measureUserAgentSpecificMemory``)."""
    handler = functools.partial(_IsolatingHandler if isolated else _QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""


class _IsolatingHandler(_QuietHandler):
    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


def page_folder(target: Path) -> Path:
    """The test page beside a copy of the built bundle."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("browser_device.js", "browser_device.css"):
        shutil.copy(BUNDLE.parent / name, target / name)
    shutil.copy(Path(__file__).with_name("page.html"), target / "page.html")
    return target


@dataclass
class Crossed:
    """What one batch carried: its commands, the bytes sent with it and the bytes its replies returned."""

    commands: list[dict[str, Any]]
    sent_bytes: int
    returned_bytes: int


class PageTransport:
    """Sends batches to one fake model of the page; replies go to ``device.receive`` at once."""

    def __init__(self, page: Any, index: int) -> None:
        self.page = page
        self.index = index
        self.device: BrowserProxyDevice | None = None
        self.incoming = Assembler()
        self.log: list[Crossed] = []

    def __call__(self, content: dict[str, object], buffers: list[memoryview]) -> None:
        encoded = [base64.b64encode(b).decode() for b in buffers]
        replies = self.page.evaluate("([i, c, b]) => window.deliver(i, c, b)", [self.index, content, encoded])
        assert self.device is not None
        returned = 0
        for reply, reply_buffers in replies:
            data = [base64.b64decode(b) for b in reply_buffers]
            returned += sum(len(d) for d in data)
            message, lost = self.incoming.feed(reply, data)  # large replies come in chunks
            assert lost is None, lost
            if message is not None:
                self.device.receive(*message)
        commands = content["commands"]
        assert isinstance(commands, list)
        self.log.append(Crossed(commands, sum(b.nbytes for b in buffers), returned))


def connect(
    page: Any, name: str = "browser:webgpu", render: bool = False
) -> tuple[BrowserProxyDevice, dict[str, Any]]:
    """A fresh fake model in the page (its own GPUDevice) and the kernel-side device talking to it."""
    device, _, state = connect_logged(page, name, render)
    return device, state


def connect_logged(
    page: Any, name: str = "browser:webgpu", render: bool = False
) -> tuple[BrowserProxyDevice, PageTransport, dict[str, Any]]:
    """`connect`, also returning the transport, whose ``log`` shows what crossed."""
    connected = page.evaluate("(render) => window.connect(render)", render)
    state: dict[str, Any] = connected["state"]
    transport = PageTransport(page, connected["index"])
    device = BrowserProxyDevice(transport, name=name, summary=state)
    transport.device = device
    return device, transport, state


T = TypeVar("T")


def complete(awaitable: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (here, the page has answered before it would)."""
    try:
        awaitable.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    awaitable.close()
    raise AssertionError("the coroutine waited, but the test page answers every request at once")


def host(t: Tensor) -> np.ndarray:
    """A browser tensor's data: the first call requests it (the page answers at once), the second reads it."""
    with contextlib.suppress(BrowserDataPending):
        return t.numpy()
    return t.numpy()
