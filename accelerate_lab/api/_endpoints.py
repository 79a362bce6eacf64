"""Endpoints of one backend, each with its own circuit breaker, balanced by round-robin or least-loaded.

Several replicas of one model (vLLM or TGI servers, KServe pods, S3 gateways) form one pool: a call
goes to a replica whose breaker lets it through; one that fails is skipped until its breaker's reset
timeout passes or a health check finds it well again. This is the scale-out path.

>>> from accelerate_lab.api import EndpointPool
>>> pool = EndpointPool(["http://a:8000/v1", "http://b:8000/v1"], strategy="round_robin")
>>> [pool.choose().url for _ in range(3)]
['http://a:8000/v1', 'http://b:8000/v1', 'http://a:8000/v1']
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from accelerate_lab.api._breaker import CircuitBreaker, CircuitState
from accelerate_lab.api._config import ResilienceConfig
from accelerate_lab.api._errors import CircuitOpen, ConfigurationError

__all__ = ["Endpoint", "EndpointPool", "Outcome", "Strategy"]

Strategy = Literal["round_robin", "least_loaded"]
Outcome = Literal["success", "failure", "neutral"]


@dataclass(eq=False)
class Endpoint:
    """One replica's URL with its own circuit breaker and request, failure and in-flight counts."""

    url: str
    breaker: CircuitBreaker
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    origin: str = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"

    @property
    def state(self) -> CircuitState:
        return self.breaker.state


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """Accepts one URL, a comma-separated string, or a list; strips trailing slashes."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    out = [u.strip().rstrip("/") for u in items if u.strip()]
    for url in out:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError(f"endpoint {url!r} must start with http:// or https://")
    if not out:
        raise ConfigurationError("no endpoint URL given")
    return out


class EndpointPool:
    """A backend's endpoints, chosen `round_robin` or `least_loaded` among those whose breaker allows."""

    def __init__(
        self,
        urls: str | Sequence[str],
        config: ResilienceConfig | None = None,
        strategy: Strategy = "round_robin",
        name: str = "",
    ) -> None:
        config = config or ResilienceConfig()
        if strategy not in ("round_robin", "least_loaded"):
            raise ConfigurationError(f"strategy {strategy!r}: use 'round_robin' or 'least_loaded'")
        self.strategy: Strategy = strategy
        self.name = name
        self.health_check_interval = config.health_check_interval
        self.endpoints = [
            Endpoint(
                url,
                CircuitBreaker(
                    config.circuit_failure_threshold,
                    config.circuit_reset_timeout,
                    config.circuit_half_open_max_calls,
                    name=url,
                ),
            )
            for url in split_urls(urls)
        ]
        self._lock = threading.Lock()
        self._next = 0
        self._last_health_check = time.monotonic()

    def __repr__(self) -> str:
        states = ", ".join(f"{e.url}: {e.state.value}" for e in self.endpoints)
        return f"EndpointPool({self.strategy}, [{states}])"

    def choose(self, only: Endpoint | None = None) -> Endpoint:
        """Picks an endpoint whose breaker allows a call and counts it in flight; CircuitOpen if none.
        With `only`, that endpoint or nothing (for calls every replica must get, like LoRA loads)."""
        with self._lock:
            if only is not None:
                order = [only]
            elif len(self.endpoints) == 1:  # the usual single server: nothing to rotate
                order = self.endpoints
            else:
                order = self.endpoints[self._next :] + self.endpoints[: self._next]
                if self.strategy == "least_loaded":
                    order.sort(key=lambda e: e.in_flight)  # stable: ties keep round-robin order
            for endpoint in order:
                if endpoint.breaker.allow():
                    self._next = (self.endpoints.index(endpoint) + 1) % len(self.endpoints)
                    endpoint.in_flight += 1
                    endpoint.requests += 1
                    return endpoint
        wait = min(e.breaker.retry_in() for e in order)
        urls = ", ".join(e.url for e in order)
        raise CircuitOpen(
            f"{self.name or 'backend'}: circuit open for every endpoint ({urls}) after repeated failures; "
            f"next trial in {wait:.1f} s (see circuit_reset_timeout)",
            retry_in=wait,
        )

    def release(self, endpoint: Endpoint, outcome: Outcome | None) -> None:
        """Reports a chosen endpoint's outcome; None means cancelled (no verdict on its health)."""
        with self._lock:
            endpoint.in_flight -= 1
            if outcome == "failure":
                endpoint.failures += 1
        if outcome == "success":
            endpoint.breaker.record_success()
        elif outcome == "failure":
            endpoint.breaker.record_failure()
        else:
            endpoint.breaker.record_cancelled()

    def health_due(self) -> bool:
        """True (once per interval) when a pool of several replicas should be health-checked."""
        if len(self.endpoints) < 2 or self.health_check_interval <= 0:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._last_health_check < self.health_check_interval:
                return False
            self._last_health_check = now
            return True

    def mark(self, endpoint: Endpoint, healthy: bool) -> None:
        """Applies a health-check result: a failing replica is taken out, a passing one put back."""
        if healthy:
            if endpoint.breaker.state is not CircuitState.CLOSED:
                endpoint.breaker.reset()
        else:
            endpoint.breaker.trip()

    def status(self) -> list[dict[str, object]]:
        """One row per endpoint, for a notebook table or a dashboard (no credentials in it)."""
        return [
            {
                "url": e.url,
                "state": e.state.value,
                "in_flight": e.in_flight,
                "requests": e.requests,
                "failures": e.failures,
            }
            for e in self.endpoints
        ]
