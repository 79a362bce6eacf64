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
import json
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


@contextlib.contextmanager
def open_tab(browser: Any, url: str, timeout_ms: float = 30_000) -> Iterator[Any]:
    """A tab of ``browser`` on the test page at ``url``, ready to connect; closing it fails on any
    uncaught error the page raised."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{url}/page.html")
    tab.wait_for_function("window.pageReady === true", timeout=timeout_ms)
    yield tab
    tab.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@contextlib.contextmanager
def open_page(chromium: Any, folder: Path, isolated: bool = False) -> Iterator[Any]:
    """A tab on the test page served from ``folder`` (made by :func:`page_folder`; ``isolated`` as in
    :func:`serve`), ready to connect."""
    with serve(folder, isolated) as url, open_tab(chromium, url) as tab:
        yield tab


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
    """What one message to the page carried (a batch, or the fill of weights its cache lacked): its
    kind, commands, the bytes sent with it and the bytes its replies returned."""

    kind: str
    commands: list[dict[str, Any]]
    sent_bytes: int
    returned_bytes: int


class PageTransport:
    """Sends batches to one fake model of the page; replies go to ``device.receive`` at once, or, with
    ``later`` set, when `collect` is called (the batch runs in the page meanwhile).

    Content crosses as a JSON string, buffers base64-encoded; with ``spool`` (the folder the page is
    served from), buffers of a megabyte or more are written there and the page fetches them, binary,
    as a notebook's comm would carry them (Playwright's arguments are slow for tens of megabytes)."""

    def __init__(self, page: Any, index: int, spool: Path | None = None) -> None:
        self.page = page
        self.index = index
        self.spool = spool
        self.device: BrowserProxyDevice | None = None
        self.incoming = Assembler()
        self.log: list[Crossed] = []
        self.later = False

    def __call__(self, content: dict[str, object], buffers: list[memoryview]) -> None:
        spooled: list[Path] = []
        encoded: list[str | dict[str, str]] = []
        for buffer in buffers:
            if self.spool is None or self.later or buffer.nbytes < 1 << 20:  # later: read after return
                encoded.append(base64.b64encode(buffer).decode())
                continue
            spooled.append(self.spool / f"spool-{self.index}-{len(spooled)}.bin")
            spooled[-1].write_bytes(buffer)
            encoded.append({"url": spooled[-1].name})
        call = "window.deliver(i, JSON.parse(c), b)"
        if self.later:
            call = f"{{ window.pending = {call}; }}"
        replies = self.page.evaluate(f"([i, c, b]) => {call}", [self.index, json.dumps(content), encoded])
        for path in spooled:
            path.unlink()
        self._feed(content, buffers, [] if self.later else replies)

    def collect(self) -> None:
        """Await the replies to the message sent last (with ``later``) and hand them to the device."""
        self._feed({"kind": "replies"}, [], self.page.evaluate("() => window.pending"))

    def _feed(self, content: dict[str, object], buffers: list[memoryview], replies: list[Any]) -> None:
        assert self.device is not None
        returned = 0
        for reply, reply_buffers in replies:
            data = [base64.b64decode(b) for b in reply_buffers]
            returned += sum(len(d) for d in data)
            message, lost = self.incoming.feed(reply, data)  # large replies come in chunks
            assert lost is None, lost
            if message is not None:
                self.device.receive(*message)
        commands = content.get("commands", [])
        assert isinstance(commands, list)
        self.log.append(Crossed(str(content["kind"]), commands, sum(b.nbytes for b in buffers), returned))


def connect(
    page: Any, name: str = "browser:webgpu", render: bool = False
) -> tuple[BrowserProxyDevice, dict[str, Any]]:
    """A fresh fake model in the page (its own GPUDevice) and the kernel-side device talking to it."""
    device, _, state = connect_logged(page, name, render)
    return device, state


def connect_logged(
    page: Any, name: str = "browser:webgpu", render: bool = False, spool: Path | None = None
) -> tuple[BrowserProxyDevice, PageTransport, dict[str, Any]]:
    """`connect`, also returning the transport, whose ``log`` shows what crossed (``spool``: see
    `PageTransport`)."""
    connected = page.evaluate("(render) => window.connect(render)", render)
    state: dict[str, Any] = connected["state"]
    transport = PageTransport(page, connected["index"], spool)
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
