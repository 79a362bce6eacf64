"""A real HTTP/1.1 server on 127.0.0.1 for tests, benchmarks and offline notebooks.

It serves replies in a provider's wire format over real sockets (nothing in httpx is patched), and
injects faults: delays before the headers or between chunks, streams split at chosen byte
boundaries, connections reset mid-body, truncated chunked bodies. It records every request.

>>> import httpx
>>> from accelerate_lab.api.testing import LocalServer, Reply
>>> with LocalServer({"GET /ping": lambda req: Reply.json({"pong": True})}) as server:
...     httpx.get(server.url + "/ping").json()
{'pong': True}
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import itertools
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Handler", "LocalServer", "Reply", "Request", "Sequenced", "sample_routes", "split_at"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    raw_target: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the server sends. `chunks` are written one by one (chunked encoding unless `length`),
    `delay` waits before the status line, `chunk_delay` between chunks, `reset_after` resets the
    connection (RST) after that many body chunks, `truncate_after` closes it cleanly mid-body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    delay: float = 0.0
    chunk_delay: float = 0.0
    reset_after: int | None = None
    truncate_after: int | None = None
    length: bool = False

    @classmethod
    def json(cls, data: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        body = json.dumps(data).encode()
        return cls(status, {"content-type": "application/json", **(headers or {})}, [body], length=True)

    @classmethod
    def raw(
        cls,
        body: bytes,
        status: int = 200,
        content_type: str = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        return cls(status, {"content-type": content_type, **(headers or {})}, [body], length=True)

    @classmethod
    def sse(cls, events: Iterable[tuple[str, str] | str], split: Sequence[int] = (), **kw: Any) -> Reply:
        """Events as (event, data) or data-only strings, split into chunks at byte offsets `split`."""
        text = ""
        for item in events:
            event, data = item if isinstance(item, tuple) else ("", item)
            text += (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        return cls(
            200,
            {"content-type": "text/event-stream", "cache-control": "no-cache"},
            split_at(text.encode(), split),
            **kw,
        )

    @classmethod
    def ndjson(cls, lines: Iterable[object], split: Sequence[int] = (), **kw: Any) -> Reply:
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return cls(200, {"content-type": "application/x-ndjson"}, split_at(body, split), **kw)


def split_at(data: bytes, offsets: Sequence[int]) -> list[bytes]:
    """`data` cut at the given byte offsets (out-of-range and repeated offsets are ignored)."""
    cuts = sorted({o for o in offsets if 0 < o < len(data)})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


Handler = Callable[[Request], "Reply | Awaitable[Reply]"]


class Sequenced:
    """A handler that answers with each reply in turn, repeating the last one."""

    def __init__(self, replies: Sequence[Reply | Handler]) -> None:
        self.replies = list(replies)
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply | Awaitable[Reply]:
        with self._lock:
            item = self.replies[min(self.calls, len(self.replies) - 1)]
            self.calls += 1
        return item if isinstance(item, Reply) else item(request)


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class LocalServer:
    """Routes map "METHOD /path" (fnmatch patterns allowed) to handlers. Use as a context manager."""

    def __init__(self, routes: Mapping[str, Handler], host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes = dict(routes)
        self.requests: list[Request] = []
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="LocalServer", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"LocalServer did not start within {timeout} s")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def boot() -> None:
            self._server = await asyncio.start_server(self._serve, self._host, self._port, backlog=1024)
            self._port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        loop.run_until_complete(boot())
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None or self._thread is None:
            return

        def shutdown() -> None:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        self._thread.join(timeout)

    async def serve_forever(self) -> None:
        """Runs in the current loop (for a separate server process, e.g. a benchmark)."""
        self._server = await asyncio.start_server(self._serve, self._host, self._port, backlog=4096)
        self._port = self._server.sockets[0].getsockname()[1]
        async with self._server:
            await self._server.serve_forever()

    def _handler(self, method: str, path: str) -> Handler | None:
        for key, handler in self.routes.items():
            m, _, pattern = key.partition(" ")
            if m == method and fnmatch.fnmatchcase(path, pattern):
                return handler
        return None

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await reader.readexactly(size + 2)
                body = body[:-2]
                if size == 0:
                    break
        parts = urlsplit(target)
        return Request(
            method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), headers, body, target
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                handler = self._handler(request.method, request.path)
                if handler is None:
                    reply = Reply.json({"error": f"no route for {request.method} {request.path}"}, 404)
                else:
                    result = handler(request)
                    reply = await result if inspect.isawaitable(result) else result
                if not await self._write(writer, reply):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client went away, or the server is shutting down
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _write(self, writer: asyncio.StreamWriter, reply: Reply) -> bool:
        """Writes one reply; False when the connection was closed on purpose."""
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if reply.length:
            headers["content-length"] = str(sum(len(c) for c in reply.chunks))
        else:
            headers["transfer-encoding"] = "chunked"
        head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        for i, chunk in enumerate(reply.chunks):
            if reply.reset_after is not None and i >= reply.reset_after:
                sock = writer.get_extra_info("socket")
                await writer.drain()
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return False
            if reply.truncate_after is not None and i >= reply.truncate_after:
                await writer.drain()
                writer.close()
                return False
            if i and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            writer.write(chunk if reply.length else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        if not reply.length:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def sample_routes() -> dict[str, Handler]:
    """A server for the `sample` backend's protocol: an echo model and 4-dimensional embeddings."""

    def chat(req: Request) -> Reply:
        body = req.json()
        last = str(body["messages"][-1]["content"])
        text = f"echo: {last}"
        usage = {"prompt_tokens": len(last.split()), "completion_tokens": len(text.split())}
        if body.get("stream"):
            words = text.split(" ")
            lines: list[object] = [{"text": w if i == 0 else " " + w} for i, w in enumerate(words)]
            return Reply.ndjson([*lines, {"done": True, "usage": usage}])
        return Reply.json({"model": body["model"], "text": text, "usage": usage})

    def embed(req: Request) -> Reply:
        texts = req.json()["texts"]
        return Reply.json({"embeddings": [[float(len(t)), float(t.count(" ")), 1.0, 0.0] for t in texts]})

    return {
        "POST /chat": chat,
        "POST /embed": embed,
        "GET /models": lambda req: Reply.json({"models": ["sample-echo"]}),
        "GET /health": lambda req: Reply.json({"status": "ok"}),
    }
