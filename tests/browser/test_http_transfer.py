"""The HTTP transfer path of the BrowserDevice's front end (widget/src/transfer.ts) in headless Chromium,
against a stand-in for the server extension on 127.0.0.1: a batch's spooled upload streams to the GPU
piece by piece and its large download is PUT to its slot as a Blob read back in parts, bytes equal both
ways (at sizes that end mid-piece and mid-part, beside small buffers that stay in the message); a GET
cut short fails the batch with a "transfer" error (`BrowserTransferError` in the kernel); a body of no
stated length is read whole; a refused GET or PUT says so in a "lost" message."""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accelerate_lab.hal.browser_errors import BrowserTransferError, error_from_report
from tests.browser.harness import page_folder

pytestmark = pytest.mark.browser

XSRF = "xsrf-of-the-test"
CONFIG = '<script id="jupyter-config-data" type="application/json">{"baseUrl": "/"}</script>'
PREFIX = "/accelerate-lab/transfer/"


@dataclass
class Spool:
    """What the stand-in server offers (token -> bytes, and how to send them) and what PUTs brought."""

    offered: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    slots: dict[str, int] = field(default_factory=dict)  # token -> status its PUT gets
    put: dict[str, bytes] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # GETs whose reader hung up before the end

    def offer(self, data: bytes, how: str = "whole") -> str:
        """``how``: "whole", "cut" (the connection closes halfway) or "chunked" (no Content-Length)."""
        token = secrets.token_urlsafe(32)
        self.offered[token] = (data, how)
        return token

    def slot(self, status: int = 204) -> str:
        token = secrets.token_urlsafe(32)
        self.slots[token] = status
        return token


def _handler(folder: Path, spool: Spool) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request log lines."""

        def do_GET(self) -> None:
            if not self.path.startswith(PREFIX):
                super().do_GET()
                return
            token = self.path[len(PREFIX) :]
            data, how = spool.offered.pop(token, (b"", "gone"))
            if how == "gone":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if how == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(data), 1 << 20):
                    piece = data[start : start + (1 << 20)]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data[: len(data) // 2] if how == "cut" else data)
            except (BrokenPipeError, ConnectionResetError):
                spool.dropped.append(token)
            if how == "cut":
                self.close_connection = True

        def do_PUT(self) -> None:
            token = self.path[len(PREFIX) :]
            status = spool.slots.pop(token, 404)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("X-XSRFToken") != XSRF:
                status = 403
            if status == 204:
                spool.put[token] = body
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture(scope="module")
def site(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Spool]]:
    """A tab on a Jupyter-like page (its config names the base URL, its cookie an XSRF token) served
    with the transfer URL, and the stand-in server's spool."""
    folder = page_folder(tmp_path_factory.mktemp("http-page"))
    page_html = folder / "page.html"
    page_html.write_text(page_html.read_text().replace("<body>", f"<body>\n{CONFIG}", 1))
    spool = Spool()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(folder, spool))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    context = chromium.new_context()
    context.add_cookies([{"name": "_xsrf", "value": XSRF, "url": url}])
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    try:
        tab.goto(f"{url}/page.html")
        tab.wait_for_function("window.pageReady === true", timeout=30_000)
        yield tab, spool
        assert not errors, f"uncaught errors in the page: {errors}"
    finally:
        context.close()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def model(site: tuple[Any, Spool]) -> int:
    """A connected fake model of the page (its worker was given the transfer URL)."""
    connected = site[0].evaluate("() => window.connect(false)")
    assert connected["state"]["status"] == "ready", connected["state"].get("message")
    return int(connected["index"])


def _deliver(page: Any, index: int, content: dict[str, Any], buffers: list[bytes]) -> list[Any]:
    """The messages the model sent in answer to ``content`` (buffers decoded), less the worker's "hello"
    (it can fetch: a kernel would probe the path)."""
    encoded = [base64.b64encode(b).decode() for b in buffers]
    replies = page.evaluate(
        "([i, c, b]) => window.deliver(i, JSON.parse(c), b)", [index, json.dumps(content), encoded]
    )
    return [(reply, [base64.b64decode(b) for b in bs]) for reply, bs in replies if reply["kind"] != "hello"]


def _view(buffer_id: int, shape: list[int], strides: list[int] | None = None) -> dict[str, Any]:
    dense = [int(np.prod(shape[i + 1 :])) for i in range(len(shape))]
    return {"id": buffer_id, "shape": shape, "strides": strides or dense, "offset": 0, "dtype": "float32"}


@pytest.mark.parametrize("elements", [(9 << 20) // 4 + 3, 1 << 18])  # 3 pieces and 2 parts; exactly 1 MiB
def test_a_spooled_upload_streams_to_the_gpu_and_its_download_is_put_back_equal(
    site: tuple[Any, Spool], model: int, elements: int
) -> None:
    page, spool = site
    rng = np.random.default_rng()
    big = rng.standard_normal(elements).astype(np.float32)
    small = rng.standard_normal(1000).astype(np.float32)
    square = rng.standard_normal((700, 700)).astype(np.float32)  # its transpose is strided: copied, then read
    token, slots = spool.offer(big.tobytes()), [spool.slot(), spool.slot()]
    n = 700
    commands = [
        {"op": "upload", "id": 1, "nbytes": big.nbytes, "buffer": 0},
        {"op": "upload", "id": 2, "nbytes": small.nbytes, "buffer": 1},
        {"op": "upload", "id": 3, "nbytes": square.nbytes, "buffer": 2},
        {"op": "download", "request": 10, "view": _view(1, [elements])},
        {"op": "download", "request": 11, "view": _view(2, [small.size])},
        {"op": "download", "request": 12, "view": _view(3, [n, n], [1, n])},
        *({"op": "free", "id": i} for i in (1, 2, 3)),
    ]
    batch = {"kind": "batch", "seq": 1, "commands": commands, "spooled": {"0": token}, "slots": slots}
    ((reply, buffers),) = _deliver(page, model, batch, [b"", small.tobytes(), square.tobytes()])
    assert reply["kind"] == "reply" and reply["error"] is None, reply
    assert reply["spooled"] == {"0": slots[0], "2": slots[1]}  # the large downloads, in slot order
    assert [len(b) for b in buffers] == [0, small.nbytes, 0]  # the small one stayed in the message
    assert not spool.offered and not spool.slots
    np.testing.assert_array_equal(np.frombuffer(spool.put.pop(slots[0]), np.float32), big)
    np.testing.assert_array_equal(np.frombuffer(buffers[1], np.float32), small)
    np.testing.assert_array_equal(np.frombuffer(spool.put.pop(slots[1]), np.float32), square.T.reshape(-1))


def test_a_get_cut_short_fails_the_batch_with_a_transfer_error(site: tuple[Any, Spool], model: int) -> None:
    page, spool = site
    data = np.random.default_rng().standard_normal(3 << 20).astype(np.float32)
    token, slot = spool.offer(data.tobytes(), "cut"), spool.slot()
    commands = [
        {"op": "upload", "id": 20, "nbytes": data.nbytes, "buffer": 0},
        {"op": "download", "request": 20, "view": _view(20, [data.size])},
    ]
    batch = {"kind": "batch", "seq": 2, "commands": commands, "spooled": {"0": token}, "slots": [slot]}
    ((reply, _),) = _deliver(page, model, batch, [b""])
    assert reply["kind"] == "reply" and reply["error"]["kind"] == "transfer", reply
    assert reply["error"]["command"] == 0 and f"of {data.nbytes} bytes" in reply["error"]["message"]
    assert isinstance(error_from_report(reply["error"]), BrowserTransferError)
    assert slot in spool.slots and not spool.put  # nothing was PUT (the kernel closes the slot)
    spool.slots.clear()


def test_a_batch_that_stops_before_its_upload_drops_the_get(site: tuple[Any, Spool], model: int) -> None:
    """Its response is cancelled, not left open with the server waiting to send the rest."""
    page, spool = site
    data = np.random.default_rng().integers(0, 256, 32 << 20, dtype=np.uint8)  # more than the buffers between
    token = spool.offer(data.tobytes())
    missing = {"op": "download", "request": 50, "view": _view(999, [4])}
    commands = [missing, {"op": "upload", "id": 50, "nbytes": data.nbytes, "buffer": 0}]
    batch = {"kind": "batch", "seq": 6, "commands": commands, "spooled": {"0": token}}
    ((reply, _),) = _deliver(page, model, batch, [b""])
    assert reply["error"]["command"] == 0 and "buffer 999 does not exist" in reply["error"]["message"], reply
    deadline = time.monotonic() + 10
    while token not in spool.dropped:
        assert time.monotonic() < deadline, "the page kept the GET of an upload that never ran open"
        time.sleep(0.05)


def test_a_body_of_no_stated_length_is_read_whole(site: tuple[Any, Spool], model: int) -> None:
    page, spool = site
    data = np.random.default_rng().standard_normal((5 << 20) // 4 + 1).astype(np.float32)
    token = spool.offer(data.tobytes(), "chunked")
    commands = [
        {"op": "upload", "id": 30, "nbytes": data.nbytes, "buffer": 0},
        {"op": "download", "request": 30, "view": _view(30, [data.size])},
        {"op": "free", "id": 30},
    ]
    batch = {"kind": "batch", "seq": 3, "commands": commands, "spooled": {"0": token}}  # no slot: comm back
    ((reply, buffers),) = _deliver(page, model, batch, [b""])
    assert reply["kind"] == "reply" and reply["error"] is None and "spooled" not in reply, reply
    np.testing.assert_array_equal(np.frombuffer(buffers[0], np.float32), data)


def test_a_refused_get_or_put_is_reported_lost(site: tuple[Any, Spool], model: int) -> None:
    page, spool = site
    data = np.random.default_rng().standard_normal(1 << 18).astype(np.float32)
    upload = {"op": "upload", "id": 40, "nbytes": data.nbytes, "buffer": 0}
    gone = {"kind": "batch", "seq": 4, "commands": [upload], "spooled": {"0": secrets.token_urlsafe(32)}}
    ((lost, _),) = _deliver(page, model, gone, [b""])
    assert lost["kind"] == "lost" and "GET of a spooled transfer failed: HTTP 404" in lost["message"], lost
    slot = spool.slot(413)
    download = {"op": "download", "request": 41, "view": _view(41, [data.size])}
    commands = [{**upload, "id": 41}, download, {"op": "free", "id": 41}]
    refused = {"kind": "batch", "seq": 5, "commands": commands, "slots": [slot]}
    ((lost, _),) = _deliver(page, model, refused, [data.tobytes()])
    assert lost == {
        "kind": "lost",
        "seq": 5,
        "message": "in the browser: Error: PUT of a transfer failed: HTTP 413",
    }
    assert not spool.put and not spool.slots
