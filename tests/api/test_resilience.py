"""Fault injection from a local server: retries, Retry-After, breakers, timeouts, typed errors, and
no request lost or run twice. Uses the `sample` backend (the same layer serves every backend)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import httpx
import pytest

from accelerate_lab.api import (
    AuthenticationFailed,
    CircuitOpen,
    CircuitState,
    ConnectionFailed,
    MalformedResponse,
    Priority,
    ProviderError,
    QueueFull,
    RateLimited,
    RequestTimeout,
    StreamInterrupted,
)
from accelerate_lab.api._types import HttpRequest
from accelerate_lab.api.testing import Reply, Request, Sequenced, sample_routes

from .conftest import Serve, backend_for

OK = Reply.json({"model": "m", "text": "fine"})


def test_429_waits_for_retry_after_then_succeeds(serve: Serve) -> None:
    handler = Sequenced([Reply.json({"error": "slow down"}, 429, {"Retry-After": "0.3"}), OK])
    server = serve({"POST /chat": handler})
    started = time.monotonic()
    assert backend_for("sample", server.url).chat(None, "hi").text == "fine"
    assert handler.calls == 2
    assert time.monotonic() - started >= 0.3


def test_retry_after_beyond_the_cap_fails_at_once_with_the_wait(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: Reply.json({"error": "later"}, 429, {"Retry-After": "120"})})
    with pytest.raises(RateLimited) as info:
        backend_for("sample", server.url, max_retry_after=5).chat(None, "hi")
    assert info.value.retry_after == 120.0 and info.value.status == 429
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(serve: Serve, status: int) -> None:
    handler = Sequenced([Reply.json({"error": "boom"}, status), Reply.json({"error": "boom"}, status), OK])
    server = serve({"POST /chat": handler})
    assert backend_for("sample", server.url).chat(None, "hi").text == "fine"
    assert handler.calls == 3


def test_exhausted_retries_raise_provider_error_with_status_and_body(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: Reply.json({"error": {"message": "overloaded"}}, 503)})
    with pytest.raises(ProviderError) as info:
        backend_for("sample", server.url, max_retries=2).chat(None, "hi")
    assert info.value.status == 503 and "overloaded" in info.value.body and "overloaded" in str(info.value)
    assert len(server.requests) == 3


async def test_response_url_is_the_one_sent_with_its_query(serve: Serve) -> None:
    # The transport parses each URL once and reuses it; a query must still reach the server and the result.
    server = serve({"GET /items": lambda r: Reply.json({"got": dict(r.query)})})
    backend = backend_for("sample", server.url)
    endpoint = backend.pool.endpoints[0]
    for params in ({"a": "1"}, {"a": "2", "b": "x y"}, None):
        req = HttpRequest("GET", "/items", params=params)
        sync, async_ = (
            backend.transport.send(req, endpoint, 5.0),
            await backend.transport.asend(req, endpoint, 5.0),
        )
        for response in (sync, async_):
            assert response.json() == {"got": params or {}}
            assert response.url == str(httpx.URL(f"{server.url}/items", params=params))
    await backend.aclose()


def test_auth_failure_is_typed_and_not_retried(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: Reply.json({"error": {"message": "bad key"}}, 401)})
    with pytest.raises(AuthenticationFailed, match="bad key"):
        backend_for("sample", server.url).chat(None, "hi")
    assert len(server.requests) == 1


def test_slow_response_times_out_within_bounds(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: Reply.json({"text": "late"}) if False else _late()})
    backend = backend_for("sample", server.url, timeout=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        backend.chat(None, "hi")
    assert time.monotonic() - started < 3
    assert len(server.requests) == 2


def _late() -> Reply:
    reply = Reply.json({"model": "m", "text": "late"})
    reply.delay = 5.0
    return reply


def test_trickling_body_hits_the_whole_body_deadline(serve: Serve) -> None:
    body = json.dumps({"model": "m", "text": "x" * 40}).encode()
    trickle = Reply(
        200,
        {"content-type": "application/json"},
        [body[i : i + 4] for i in range(0, len(body), 4)],
        chunk_delay=0.1,
    )
    server = serve({"POST /chat": lambda r: trickle})
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        backend_for("sample", server.url, timeout=0.4, max_retries=0).chat(None, "hi")
    assert time.monotonic() - started < 2


async def test_async_timeout_is_bounded_too(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: _late()})
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        await backend_for("sample", server.url, timeout=0.3, max_retries=0).achat(None, "hi")
    assert time.monotonic() - started < 2


def test_malformed_json_is_a_typed_error_and_not_retried(serve: Serve) -> None:
    server = serve(
        {"POST /chat": lambda r: Reply.raw(b'{"text": "unterminated', content_type="application/json")}
    )
    with pytest.raises(MalformedResponse, match="expected JSON"):
        backend_for("sample", server.url).chat(None, "hi")
    assert len(server.requests) == 1


def test_wrong_shape_is_malformed_not_a_key_error(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: Reply.json({"unexpected": 1})})
    with pytest.raises(MalformedResponse):
        backend_for("sample", server.url).chat(None, "hi")


def _stream(reset_after: int | None = None, truncate_after: int | None = None) -> Reply:
    lines = [{"text": "a"}, {"text": "b"}, {"text": "c"}, {"done": True}]
    return Reply.ndjson(lines, split=[9, 18, 27], reset_after=reset_after, truncate_after=truncate_after)


def test_reset_before_the_first_chunk_is_retried(serve: Serve) -> None:
    handler = Sequenced([_stream(reset_after=0), _stream()])
    server = serve({"POST /chat": handler})
    chunks = list(backend_for("sample", server.url).stream_chat(None, "hi"))
    assert "".join(c.text for c in chunks) == "abc" and chunks[-1].done
    assert handler.calls == 2


def test_reset_mid_stream_is_stream_interrupted_without_duplicates(serve: Serve) -> None:
    handler = Sequenced([_stream(reset_after=2), _stream()])
    server = serve({"POST /chat": handler})
    got: list[str] = []
    with pytest.raises(StreamInterrupted):
        for chunk in backend_for("sample", server.url).stream_chat(None, "hi"):
            got.append(chunk.text)
    assert got == ["a"]  # delivered once, never replayed by a retry
    assert handler.calls == 1


@pytest.mark.parametrize(("truncate_after", "error"), [(1, ConnectionFailed), (3, StreamInterrupted)])
def test_truncated_stream_is_detected(serve: Serve, truncate_after: int, error: type[Exception]) -> None:
    """Cut before any chunk: a (retryable) connection failure; after one: the stream is interrupted."""
    server = serve({"POST /chat": lambda r: _stream(truncate_after=truncate_after)})
    with pytest.raises(error):
        list(backend_for("sample", server.url, max_retries=0).stream_chat(None, "hi"))


def test_stream_without_final_event_is_interrupted(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: Reply.ndjson([{"text": "a"}, {"text": "b"}])})
    with pytest.raises(StreamInterrupted, match="final event"):
        list(backend_for("sample", server.url).stream_chat(None, "hi"))


async def test_async_stream_reset_is_typed(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: _stream(reset_after=2)})
    got: list[str] = []
    with pytest.raises(StreamInterrupted):
        async for chunk in backend_for("sample", server.url).astream_chat(None, "hi"):
            got.append(chunk.text)
    assert got == ["a"]


def test_breaker_opens_fails_fast_then_recovers(serve: Serve) -> None:
    healthy = threading.Event()

    def chat(req: Request) -> Reply:
        return OK if healthy.is_set() else Reply.json({"error": "down"}, 500)

    server = serve({"POST /chat": chat})
    backend = backend_for(
        "sample", server.url, max_retries=0, circuit_failure_threshold=3, circuit_reset_timeout=0.3
    )
    breaker = backend.pool.endpoints[0].breaker
    for _ in range(3):
        with pytest.raises(ProviderError):
            backend.chat(None, "hi")
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen) as info:
        backend.chat(None, "hi")
    assert 0 < info.value.retry_in <= 0.3
    assert len(server.requests) == 3  # the fast failure never reached the server
    healthy.set()
    time.sleep(0.35)
    # mypy keeps breaker.state narrowed across the calls above (python/mypy#17537)
    assert breaker.state is CircuitState.HALF_OPEN  # type: ignore[comparison-overlap]
    assert backend.chat(None, "hi").text == "fine"
    assert breaker.state is CircuitState.CLOSED


def test_client_errors_do_not_open_the_breaker(serve: Serve) -> None:
    server = serve({"POST /chat": lambda r: Reply.json({"error": "bad"}, 400)})
    backend = backend_for("sample", server.url, circuit_failure_threshold=1)
    for _ in range(3):
        with pytest.raises(ProviderError):
            backend.chat(None, "hi")
    assert backend.pool.endpoints[0].state is CircuitState.CLOSED


def test_connection_refused_is_typed(serve: Serve) -> None:
    backend = backend_for("sample", "http://127.0.0.1:9", max_retries=1)
    with pytest.raises(ConnectionFailed):
        backend.chat(None, "hi")


async def test_no_request_is_lost_or_run_twice_under_faults(serve: Serve) -> None:
    """200 concurrent requests through 4 slots; every third first attempt gets a 503 or a reset."""
    attempts: Counter[str] = Counter()
    served: Counter[str] = Counter()
    lock = threading.Lock()

    def chat(req: Request) -> Reply:
        rid = req.json()["messages"][-1]["content"]
        with lock:
            attempts[rid] += 1
            first = attempts[rid] == 1
        n = int(rid.split("-")[1])
        if first and n % 3 == 0:
            return Reply.json({"error": "busy"}, 503)
        if first and n % 3 == 1 and n % 2 == 0:
            return Reply(200, {"content-type": "application/json"}, [b'{"text"', b': "x"}'], reset_after=1)
        with lock:
            served[rid] += 1
        return Reply.json({"model": "m", "text": rid})

    server = serve({"POST /chat": chat})
    backend = backend_for("sample", server.url, max_concurrent_requests=4, max_queue_size=1000, timeout=10)
    ids = [f"req-{i}" for i in range(200)]
    results = await asyncio.wait_for(asyncio.gather(*(backend.achat(None, rid) for rid in ids)), 60)
    assert [r.text for r in results] == ids
    assert all(served[rid] == 1 for rid in ids) and len(served) == 200
    assert backend.layer.queue.active == 0 and backend.layer.queue.waiting == 0


async def test_full_queue_refuses_with_a_typed_error(serve: Serve) -> None:
    release = asyncio.Event()

    async def slow(req: Request) -> Reply:
        await asyncio.sleep(0.5)
        return OK

    server = serve({"POST /chat": slow})
    backend = backend_for("sample", server.url, max_concurrent_requests=1, max_queue_size=2)
    tasks = [asyncio.create_task(backend.achat(None, "x")) for _ in range(5)]
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    release.set()
    assert sum(isinstance(r, QueueFull) for r in results) == 2
    assert sum(getattr(r, "text", None) == "fine" for r in results) == 3
    assert len(server.requests) == 3


async def test_cancelling_a_request_frees_its_slot(serve: Serve) -> None:
    async def slow(req: Request) -> Reply:
        await asyncio.sleep(5)
        return OK

    server = serve({"POST /chat": slow, "GET /models": lambda r: Reply.json({"models": ["m"]})})
    backend = backend_for("sample", server.url, max_concurrent_requests=1, timeout=10)
    task = asyncio.create_task(backend.achat(None, "x"))
    await asyncio.sleep(0.2)
    assert backend.layer.queue.active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.layer.queue.active == 0
    assert await asyncio.wait_for(backend.alist_models(priority=Priority.HIGH), 5) == ["m"]
    assert backend.pool.endpoints[0].state is CircuitState.CLOSED


def test_closing_a_stream_early_frees_its_slot(serve: Serve) -> None:
    server = serve(sample_routes())
    backend = backend_for("sample", server.url, max_concurrent_requests=1)
    stream = backend.stream_chat(None, "one two three")
    assert next(stream).text == "echo:"
    assert backend.layer.queue.active == 1
    stream.close()
    assert backend.layer.queue.active == 0
