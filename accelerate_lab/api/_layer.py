"""The resilience layer every backend shares: queue slot -> endpoint -> send -> retry/failover.

One `Resilience` per backend instance. A call takes a slot in the priority queue, picks an endpoint
whose breaker allows it, sends through the transport, parses, and on a retryable failure waits
(backoff with jitter, or the server's Retry-After) and tries again, possibly on another replica.
A stream is retried only until its first chunk was delivered; after that a failure is a
`StreamInterrupted`, so no chunk is ever delivered twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import Protocol, TypeVar

from accelerate_lab.api._config import ResilienceConfig
from accelerate_lab.api._decode import Frame
from accelerate_lab.api._endpoints import Endpoint, EndpointPool, Outcome
from accelerate_lab.api._errors import (
    ApiError,
    CircuitOpen,
    ConnectionFailed,
    MalformedResponse,
    ProviderError,
    RateLimited,
    RequestTimeout,
    StreamInterrupted,
)
from accelerate_lab.api._queue import RequestQueue
from accelerate_lab.api._retry import RetryPolicy
from accelerate_lab.api._transport import Transport
from accelerate_lab.api._types import HttpRequest, HttpResponse, Priority

__all__ = ["Resilience", "StreamDecoder"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class StreamDecoder(Protocol[T_co]):
    """A sans-I/O stream parser: fed one frame at a time, returns what to deliver (a list, built before
    it returns, so that a malformed event fails inside `feed`), knows when done."""

    @property
    def done(self) -> bool: ...

    def feed(self, frame: Frame) -> Sequence[T_co]: ...


def outcome_of(exc: BaseException) -> Outcome | None:
    """What a failure says about the endpoint's health (None: nothing, e.g. cancelled)."""
    if isinstance(exc, RateLimited):
        return "neutral"
    if isinstance(exc, ProviderError):
        return "failure" if exc.status >= 500 else "success"  # a 4xx proves the server is up
    if isinstance(exc, (RequestTimeout, ConnectionFailed, MalformedResponse, StreamInterrupted)):
        return "failure"
    if isinstance(exc, ApiError):
        return "neutral"
    return None


def _parsed(parse: Callable[[HttpResponse], T], response: HttpResponse) -> T:
    try:
        return parse(response)
    except ApiError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(
            f"{response.url}: answer not in the expected format ({type(exc).__name__}: {exc}); "
            f"body starts {response.content[:200]!r}"
        ) from exc


def _fed(decoder: StreamDecoder[T], frame: Frame, url: str) -> Sequence[T]:
    """What one frame delivers, with a malformed event as a typed error."""
    try:
        return decoder.feed(frame)
    except ApiError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(
            f"{url}: stream event not in the expected format: {frame.data[:200]!r}"
        ) from exc


class Resilience:
    def __init__(
        self,
        name: str,
        config: ResilienceConfig,
        pool: EndpointPool,
        transport: Transport,
        health: HttpRequest | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.pool = pool
        self.transport = transport
        self.health = health
        self.queue = RequestQueue(config.max_concurrent_requests, config.max_queue_size)
        self.retry = RetryPolicy.from_config(config)

    def _choose(self, only: Endpoint | None, last_error: ApiError | None) -> Endpoint:
        try:
            return self.pool.choose(only)
        except CircuitOpen as exc:
            if last_error is not None:  # say what opened the breakers
                raise exc from last_error
            raise

    def _give_up_or_wait(self, attempt: int, exc: ApiError, endpoint: Endpoint) -> float:
        delay = self.retry.next_delay(attempt, exc)
        if delay is None:
            raise exc
        logger.info(
            "%s: %s on %s; retry %d in %.2f s",
            self.name,
            type(exc).__name__,
            endpoint.url,
            attempt + 1,
            delay,
        )
        return delay

    # --- one request, one response -------------------------------------------------------------
    def call(
        self,
        req: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        endpoint: Endpoint | None = None,
    ) -> T:
        timeout = timeout or self.config.timeout
        if self.health is not None and self.pool.health_due():
            self.check_health()
        queue = self.queue
        if not queue.try_acquire():  # a free slot costs no context manager; else wait in line
            queue.acquire(priority, self.config.wait_timeout)
        try:
            attempt = 0
            last_error: ApiError | None = None
            while True:
                chosen = self._choose(endpoint, last_error)
                outcome: Outcome | None = None
                try:
                    result = _parsed(parse, self.transport.send(req, chosen, timeout))
                    outcome = "success"
                    return result
                except ApiError as exc:
                    last_error = exc
                    outcome = outcome_of(exc)
                    delay = self._give_up_or_wait(attempt, exc, chosen)
                finally:
                    self.pool.release(chosen, outcome)
                time.sleep(delay)
                attempt += 1
        finally:
            queue.release()

    async def acall(
        self,
        req: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        endpoint: Endpoint | None = None,
    ) -> T:
        timeout = timeout or self.config.timeout
        if self.health is not None and self.pool.health_due():
            await self.acheck_health()
        queue = self.queue
        if not queue.try_acquire():  # a free slot costs no context manager or coroutine; else wait
            await queue.aacquire(priority, self.config.wait_timeout)
        try:
            attempt = 0
            last_error: ApiError | None = None
            while True:
                chosen = self._choose(endpoint, last_error)
                outcome: Outcome | None = None
                try:
                    result = _parsed(parse, await self.transport.asend(req, chosen, timeout))
                    outcome = "success"
                    return result
                except ApiError as exc:
                    last_error = exc
                    outcome = outcome_of(exc)
                    delay = self._give_up_or_wait(attempt, exc, chosen)
                finally:
                    self.pool.release(chosen, outcome)
                await asyncio.sleep(delay)
                attempt += 1
        finally:
            queue.release()

    # --- streams -------------------------------------------------------------------------------
    @staticmethod
    def _ended_early(endpoint: Endpoint, yielded: bool) -> ApiError:
        if yielded:
            return StreamInterrupted(
                f"{endpoint.url}: stream ended before its final event; the answer is incomplete"
            )
        return ConnectionFailed(f"{endpoint.url}: stream ended before any event")

    def stream(
        self,
        req: HttpRequest,
        new_decoder: Callable[[], StreamDecoder[T]],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
    ) -> Generator[T, None, None]:
        timeout = timeout or self.config.timeout
        with self.queue.slot(priority, self.config.wait_timeout):
            attempt = 0
            last_error: ApiError | None = None
            while True:
                endpoint = self._choose(None, last_error)
                outcome: Outcome | None = None
                yielded = False
                try:
                    with self.transport.stream(req, endpoint, timeout) as batches:
                        decoder = new_decoder()
                        for frames in batches:
                            for frame in frames:  # frame by frame: what precedes a bad event is delivered
                                for item in _fed(decoder, frame, endpoint.url):
                                    yielded = True
                                    yield item
                                if decoder.done:
                                    break
                            if decoder.done:
                                break
                        if not decoder.done:
                            raise self._ended_early(endpoint, yielded)
                    outcome = "success"
                    return
                except ApiError as exc:
                    last_error = exc
                    outcome = outcome_of(exc)
                    if yielded and not isinstance(exc, StreamInterrupted):
                        raise StreamInterrupted(
                            f"{endpoint.url}: stream broke after partial output: {exc}"
                        ) from exc
                    delay = self._give_up_or_wait(attempt, exc, endpoint)
                finally:
                    self.pool.release(endpoint, outcome)
                time.sleep(delay)
                attempt += 1

    async def astream(
        self,
        req: HttpRequest,
        new_decoder: Callable[[], StreamDecoder[T]],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
    ) -> AsyncGenerator[T, None]:
        timeout = timeout or self.config.timeout
        async with self.queue.aslot(priority, self.config.wait_timeout):
            attempt = 0
            last_error: ApiError | None = None
            while True:
                endpoint = self._choose(None, last_error)
                outcome: Outcome | None = None
                yielded = False
                try:
                    async with self.transport.astream(req, endpoint, timeout) as batches:
                        decoder = new_decoder()
                        async for frames in batches:
                            for frame in frames:  # frame by frame: what precedes a bad event is delivered
                                for item in _fed(decoder, frame, endpoint.url):
                                    yielded = True
                                    yield item
                                if decoder.done:
                                    break
                            if decoder.done:
                                break
                        if not decoder.done:
                            raise self._ended_early(endpoint, yielded)
                    outcome = "success"
                    return
                except ApiError as exc:
                    last_error = exc
                    outcome = outcome_of(exc)
                    if yielded and not isinstance(exc, StreamInterrupted):
                        raise StreamInterrupted(
                            f"{endpoint.url}: stream broke after partial output: {exc}"
                        ) from exc
                    delay = self._give_up_or_wait(attempt, exc, endpoint)
                finally:
                    self.pool.release(endpoint, outcome)
                await asyncio.sleep(delay)
                attempt += 1

    # --- health checks (the scale-out path) ----------------------------------------------------
    def _health_timeout(self) -> float:
        return min(self.config.timeout, 5.0)

    def check_health(self) -> list[bool]:
        """Probes every endpoint's health route now; failing replicas leave the rotation."""
        if self.health is None:
            return [e.state.value != "open" for e in self.pool.endpoints]
        results = []
        for endpoint in self.pool.endpoints:
            try:
                self.transport.send(self.health, endpoint, self._health_timeout())
                ok = True
            except ApiError:
                ok = False
            self.pool.mark(endpoint, ok)
            results.append(ok)
        return results

    async def acheck_health(self) -> list[bool]:
        if self.health is None:
            return [e.state.value != "open" for e in self.pool.endpoints]
        health = self.health

        async def probe(endpoint: Endpoint) -> bool:
            try:
                await self.transport.asend(health, endpoint, self._health_timeout())
                return True
            except ApiError:
                return False

        results = await asyncio.gather(*(probe(e) for e in self.pool.endpoints))
        for endpoint, ok in zip(self.pool.endpoints, results, strict=True):
            self.pool.mark(endpoint, ok)
        return list(results)
