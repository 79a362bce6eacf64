"""The one place that does I/O: httpx `Client` and `AsyncClient`, typed errors, stream framing.

Adapters describe requests as `HttpRequest`; the transport joins them to an endpoint, adds the
backend's headers (or signs them), sends, and returns an `HttpResponse` or a stream of `Frame`
batches, one per network read (SSE events through `SseParser`, or NDJSON lines). Failures become typed
`ApiError`s whose text never holds a key.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager

import httpx

from accelerate_lab.api._config import ResilienceConfig
from accelerate_lab.api._decode import Frame, SseParser
from accelerate_lab.api._endpoints import Endpoint
from accelerate_lab.api._errors import (
    ApiError,
    AuthenticationFailed,
    ConnectionFailed,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    ProviderError,
    RateLimited,
    RequestTimeout,
)
from accelerate_lab.api._retry import parse_retry_after
from accelerate_lab.api._secret import Secret, redact
from accelerate_lab.api._types import HttpRequest, HttpResponse

__all__ = ["POOL_LIMITS", "Signer", "Transport", "error_for_status"]

logger = logging.getLogger(__name__)

Signer = Callable[[httpx.Request], None]
"""Adds authentication to a fully built request (SigV4 needs the final URL and body)."""

POOL_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=256)
"""The connection pool of every backend's httpx clients (bench/bench_api.py gives its baseline the same)."""
_BODY_EXCERPT = 2000
_END_GRACE = 0.1  # seconds a complete stream gets to end its body, so that its connection is reused


def _provider_message(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "error"):
                if isinstance(err.get(key), str):
                    return str(err[key])
        if isinstance(err, str):
            return err
        for key in ("message", "detail"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return body[:300]


def error_for_status(
    provider: str, status: int, headers: Mapping[str, str], body: str, url: str
) -> ProviderError:
    """The typed error for an HTTP error status; `body` must already be redacted."""
    detail = _provider_message(body)
    request_id = headers.get("x-request-id") or headers.get("request-id")
    excerpt = body[:_BODY_EXCERPT]
    where = f"{provider}: {url} answered {status}"
    if status in (401, 403):
        return AuthenticationFailed(
            f"{where}: {detail}; check the {provider} API key (metadata['{provider}_api_key'] "
            f"or the {provider.upper()}_API_KEY environment variable)",
            status=status,
            body=excerpt,
            request_id=request_id,
        )
    if status == 429:
        retry_after = parse_retry_after(headers)
        hint = f"retry after {retry_after:.1f} s" if retry_after is not None else "slow down"
        return RateLimited(
            f"{where}: rate limited ({detail}); {hint}",
            body=excerpt,
            request_id=request_id,
            retry_after=retry_after,
        )
    kind: type[ProviderError] = ProviderError
    if status == 404:
        kind = NotFound
    elif status in (400, 413, 422):
        kind = InvalidRequest
    return kind(f"{where}: {detail}", status=status, body=excerpt, request_id=request_id)


def _map_exception(exc: Exception, url: str, timeout: float) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"{url}: no answer within {timeout} s ({type(exc).__name__}); raise `timeout`")
    if isinstance(exc, httpx.DecodingError):
        return MalformedResponse(f"{url}: undecodable body: {exc}")
    if isinstance(exc, (httpx.TransportError, OSError)):
        return ConnectionFailed(f"{url}: connection failed ({type(exc).__name__}: {exc})")
    return ApiError(f"{url}: {type(exc).__name__}: {exc}")


def _sse_parser(req: HttpRequest, response: httpx.Response, url: str) -> SseParser | None:
    """A parser for an SSE request's stream (None for NDJSON); MalformedResponse if it is not SSE."""
    if req.stream != "sse":
        return None
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        raise MalformedResponse(
            f"{url}: not a server-sent event stream: expected Content-Type text/event-stream, "
            f"got {content_type!r}"
        )
    return SseParser()


@functools.lru_cache(maxsize=512)
def _url_of(text: str) -> tuple[httpx.URL, str]:
    """A request URL parsed once, with its normalised text: httpx parses a string URL in Python on
    every request, and one backend sends to the same few URLs over and over."""
    url = httpx.URL(text)
    return url, str(url)


async def _read_to_end(batches: AsyncIterator[list[Frame]]) -> None:
    try:
        async with asyncio.timeout(_END_GRACE):
            async for _ in batches:
                return  # frames after the final one: not worth reading, close the connection instead
    except (ApiError, TimeoutError):
        pass  # the answer is complete; only the connection is lost


class Transport:
    def __init__(
        self,
        provider: str,
        config: ResilienceConfig,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[Secret] = (),
        signer: Signer | None = None,
        verify: bool = True,
    ) -> None:
        self.provider = provider
        self.config = config
        self._headers = dict(headers or {})
        self._secrets = tuple(s for s in secrets if s)
        self._signer = signer
        self._verify = verify
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._timeouts = self._timeout_of(config.timeout).as_dict()  # most calls use it: convert it once

    def __repr__(self) -> str:
        return f"Transport({self.provider!r})"

    def _options(self) -> dict[str, object]:
        return {
            "timeout": httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            "limits": POOL_LIMITS,
            "verify": self._verify,
        }

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(**self._options())  # type: ignore[arg-type]
        return self._client

    @property
    def aclient(self) -> httpx.AsyncClient:
        # An AsyncClient's pool belongs to one event loop: make a new one when the loop changes.
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            self._aclient = httpx.AsyncClient(**self._options())  # type: ignore[arg-type]
            self._aclient_loop = loop
        return self._aclient

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None and self._aclient_loop is asyncio.get_running_loop():
            await self._aclient.aclose()
        self._aclient = None

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _build(
        self, client: httpx.Client | httpx.AsyncClient, req: HttpRequest, endpoint: Endpoint, timeout: float
    ) -> tuple[httpx.Request, str]:
        """The request to send, and its URL's text (for results and errors)."""
        url, text = _url_of((endpoint.origin if req.from_root else endpoint.url) + req.path)
        headers = self._headers
        if req.headers or req.stream == "sse":
            headers = {**headers, **req.headers}
            if req.stream == "sse":
                headers.setdefault("Accept", "text/event-stream")
        built = client.build_request(
            req.method,
            url,
            params=req.params,
            headers=headers,
            json=req.json if req.content is None and req.files is None else None,
            content=req.content,
            data=req.data,
            files=req.files,
            # as the extension `timeout=` would make, without building and converting a Timeout each time
            extensions={
                "timeout": self._timeouts
                if timeout == self.config.timeout
                else self._timeout_of(timeout).as_dict()
            },
        )
        if self._signer is not None:
            self._signer(built)
        return built, text if req.params is None else str(built.url)

    def _timeout_of(self, timeout: float) -> httpx.Timeout:
        return httpx.Timeout(timeout, connect=min(timeout, self.config.connect_timeout))

    def _fail(self, response: httpx.Response, body: bytes) -> ProviderError:
        text = self.redact(body.decode("utf-8", errors="replace"))
        return error_for_status(
            self.provider, response.status_code, response.headers, text, str(response.request.url)
        )

    def _done(self, response: httpx.Response, body: bytes, url: str, started: float) -> HttpResponse:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d (%d bytes, %.3f s)",
                response.request.method,
                url,
                response.status_code,
                len(body),
                time.monotonic() - started,
            )
        if response.status_code >= 400:
            raise self._fail(response, body)
        # httpx's own Headers, a case-insensitive Mapping: a copy decoded every header of every answer,
        # and adapters read one now and then
        return HttpResponse(response.status_code, response.headers, body, url)

    def send(self, req: HttpRequest, endpoint: Endpoint, timeout: float) -> HttpResponse:
        started = time.monotonic()
        deadline = started + timeout
        client = self.client
        request, url = self._build(client, req, endpoint, timeout)
        try:
            response = client.send(request, stream=True)
            try:
                parts = []
                for part in response.iter_bytes():
                    parts.append(part)
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("whole-body deadline passed", request=request)
            finally:
                response.close()
        except Exception as exc:
            raise _map_exception(exc, url, timeout) from exc
        return self._done(response, b"".join(parts), url, started)

    async def asend(self, req: HttpRequest, endpoint: Endpoint, timeout: float) -> HttpResponse:
        started = time.monotonic()
        client = self.aclient
        request, url = self._build(client, req, endpoint, timeout)
        try:
            async with asyncio.timeout(timeout):
                response = await client.send(request, stream=True)
                try:
                    body = b"".join([part async for part in response.aiter_bytes()])
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise _map_exception(httpx.ReadTimeout(str(exc)), url, timeout) from exc
        except Exception as exc:
            raise _map_exception(exc, url, timeout) from exc
        return self._done(response, body, url, started)

    @contextmanager
    def stream(self, req: HttpRequest, endpoint: Endpoint, timeout: float) -> Iterator[Iterator[list[Frame]]]:
        """Opens a stream of frame batches (one per read); the status is checked before the first.
        Each read is bounded by `timeout`; errors while iterating are raised as typed errors too."""
        request, url = self._build(self.client, req, endpoint, timeout)
        try:
            response = self.client.send(request, stream=True)
        except Exception as exc:
            raise _map_exception(exc, url, timeout) from exc
        try:
            if response.status_code >= 400:
                try:
                    body = response.read()
                except Exception as exc:
                    raise _map_exception(exc, url, timeout) from exc
                raise self._fail(response, body)
            batches = self._batches(response, _sse_parser(req, response, url), url, timeout)
            try:
                yield batches
            finally:
                batches.close()
        finally:
            response.close()

    def _batches(
        self, response: httpx.Response, sse: SseParser | None, url: str, timeout: float
    ) -> Generator[list[Frame], None, None]:
        try:
            if sse is not None:
                for text in response.iter_text():
                    if frames := sse.feed(text):
                        yield frames
                if frames := sse.flush():
                    yield frames
            else:
                for line in response.iter_lines():
                    if line.strip():
                        yield [Frame(line)]
        except Exception as exc:
            raise _map_exception(exc, url, timeout) from exc

    @asynccontextmanager
    async def astream(
        self, req: HttpRequest, endpoint: Endpoint, timeout: float
    ) -> AsyncIterator[AsyncIterator[list[Frame]]]:
        """Opens a stream of frame batches, as `stream` does. Leaving the block without an error means
        the answer is complete: the body's end is then read (within `_END_GRACE` s, and only if no more
        frames come) so that the connection goes back to the pool instead of being closed, sparing the
        next stream a connect and TLS handshake (OpenAI's own SDK reads to the end for the same reason)."""
        client = self.aclient
        request, url = self._build(client, req, endpoint, timeout)
        try:
            response = await client.send(request, stream=True)
        except Exception as exc:
            raise _map_exception(exc, url, timeout) from exc
        try:
            if response.status_code >= 400:
                try:
                    body = await response.aread()
                except Exception as exc:
                    raise _map_exception(exc, url, timeout) from exc
                raise self._fail(response, body)
            batches = self._abatches(response, _sse_parser(req, response, url), url, timeout)
            try:
                yield batches
                await _read_to_end(batches)
            finally:
                await batches.aclose()  # now, rather than in a finaliser task once it is garbage
        finally:
            await response.aclose()

    async def _abatches(
        self, response: httpx.Response, sse: SseParser | None, url: str, timeout: float
    ) -> AsyncGenerator[list[Frame], None]:
        try:
            if sse is not None:
                async for text in response.aiter_text():
                    if frames := sse.feed(text):
                        yield frames
                if frames := sse.flush():
                    yield frames
            else:
                async for line in response.aiter_lines():
                    if line.strip():
                        yield [Frame(line)]
        except Exception as exc:
            raise _map_exception(exc, url, timeout) from exc
