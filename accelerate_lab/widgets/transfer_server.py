"""The Jupyter server extension of the fast transfer path: ``{base_url}accelerate-lab/transfer/<token>``.

``GET`` streams the spool file the kernel offered (:meth:`Spool.offer`) and removes it; ``PUT`` streams
the request body into the slot the kernel opened (:meth:`Spool.slot`), refusing more bytes than the
slot allows (413). Neither copies the bytes in Python: a GET sends the file's pages from a map of it,
and a PUT with a ``Content-Length`` reads the socket straight into a buffer it writes to the file
(tornado's own body reading copies each 64 KiB three times; a chunked body still goes that way).
Both need a logged-in user (403 otherwise; the page's cookie, plus ``X-XSRFToken`` for PUT) and a
live token (404 otherwise); a token works once. Enabled by the
``jupyter_server_config.d/accelerate_lab.json`` the wheel installs, or with
``--ServerApp.jpserver_extensions="{'accelerate_lab.widgets.transfer_server': True}"``.
"""

from __future__ import annotations

import contextlib
import copy
import mmap
import os
from typing import Any, BinaryIO

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

from accelerate_lab.widgets.transfer_spool import TOKEN, Spool

__all__ = ["TransferHandler"]

SEND_BYTES = 4 << 20
"""Bytes of its file a GET hands the socket at a time."""
BODY_BYTES = 1 << 20
"""Bytes a PUT takes from the socket at a time (tornado's default, 64 KiB, costs a callback per piece)."""


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "accelerate_lab.widgets.transfer_server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], r"accelerate-lab/transfer/([^/]+)")
    spool = Spool()
    web_app.add_handlers(".*$", [(route, TransferHandler, {"spool": spool})])
    serverapp.log.info("accelerate_lab: transfer path at %s (spool %s)", route, spool.root)


@web.stream_request_body
class TransferHandler(JupyterHandler):
    """One spool file, fetched (GET) or written (PUT) once by the logged-in user's browser."""

    def initialize(self, spool: Spool) -> None:
        self.spool = spool
        self._file: BinaryIO | None = None
        self._limit = 0
        self._received = 0
        self._token = ""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare(_redirect_to_login=False)  # the user, and XSRF for PUT
        if self.current_user is None:
            raise web.HTTPError(403, "log in to JupyterLab first")
        token = self.path_args[0]
        if not TOKEN.fullmatch(token):
            raise web.HTTPError(404, "no such transfer")
        self._token = token
        self.spool.sweep()
        if self.request.method == "PUT":
            self._open_slot(token)
            if "Content-Length" in self.request.headers:
                await self._read_body(int(self.request.headers["Content-Length"]))

    def _open_slot(self, token: str) -> None:
        slot = self.spool.root / f"{token}.slot"
        try:
            self._limit = int(slot.read_text())
            slot.unlink()  # claimed: a second PUT finds nothing
        except (FileNotFoundError, ValueError):
            raise web.HTTPError(404, "no such transfer (or it was used)") from None
        declared = int(self.request.headers.get("Content-Length", "0"))
        if declared > self._limit:
            raise web.HTTPError(413, f"{declared} bytes for a transfer of at most {self._limit}")
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)
        connection.set_max_body_size(self._limit)
        # this request's body in pieces of BODY_BYTES, not tornado's 64 KiB (its parameters are shared
        # by the server's connections: this one gets its own copy)
        connection.params = copy.copy(connection.params)
        connection.params.chunk_size = BODY_BYTES
        path = self.spool.root / f"{token}.part"
        self._file = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    async def _read_body(self, length: int) -> None:
        """The body, read from the connection's stream into one reused buffer and written to the file;
        then the connection is told that no body is left for it to read (it reads after ``prepare``)."""
        assert self._file is not None and isinstance(self.request.connection, HTTP1Connection)
        stream = self.request.connection.stream
        buffer = bytearray(min(BODY_BYTES, length))
        while self._received < length:
            if length - self._received < len(buffer):  # never read past the body
                buffer = bytearray(length - self._received)
            try:
                got = await stream.read_into(buffer, partial=True)
            except StreamClosedError:
                self._abort()
                raise web.HTTPError(400, f"the upload was cut off after {self._received} bytes") from None
            with memoryview(buffer) as view:
                self._file.write(view[:got])
            self._received += got
        self.request.headers["Content-Length"] = "0"

    def data_received(self, chunk: bytes) -> None:
        if self._file is None:
            return
        self._received += len(chunk)
        if self._received > self._limit:
            self._abort()
            raise web.HTTPError(413, f"more than {self._limit} bytes for this transfer")
        self._file.write(chunk)

    def _abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            with contextlib.suppress(FileNotFoundError):
                (self.spool.root / f"{self._token}.part").unlink()

    def on_connection_close(self) -> None:
        self._abort()

    async def put(self, token: str) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        os.replace(self.spool.root / f"{token}.part", self.spool.root / f"{token}.put")
        self.set_status(204)

    async def get(self, token: str) -> None:
        source = self.spool.root / f"{token}.get"
        sending = self.spool.root / f"{token}.sending"
        try:
            os.replace(source, sending)  # claimed: a second GET finds nothing
        except FileNotFoundError:
            raise web.HTTPError(404, "no such transfer (or it was used)") from None
        try:
            with sending.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                self.set_header("Content-Type", "application/octet-stream")
                self.set_header("Cache-Control", "no-store")
                self.set_header("Content-Length", str(size))
                await self.flush()  # the headers
                if size:
                    await self._send(file.fileno(), size)
        finally:
            sending.unlink()

    async def _send(self, fd: int, size: int) -> None:
        """The file's pages, mapped, to the socket (``RequestHandler.write`` would take copies as bytes)."""
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as pages, memoryview(pages) as view:
            for start in range(0, size, SEND_BYTES):
                # its stream takes any buffer (the signature says bytes)
                await connection.write(view[start : start + SEND_BYTES])  # type: ignore[arg-type]
