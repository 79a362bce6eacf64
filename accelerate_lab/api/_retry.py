"""Retries: exponential backoff with jitter, honouring the server's `Retry-After`, retryable errors only.

>>> from accelerate_lab.api import RetryPolicy, RateLimited
>>> policy = RetryPolicy(max_retries=3, base=0.5, jitter=0.0)
>>> policy.delay(0), policy.delay(1), policy.delay(2)
(0.5, 1.0, 2.0)
>>> policy.next_delay(0, RateLimited("slow down", retry_after=3.0))
3.0
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from accelerate_lab.api._config import ResilienceConfig
from accelerate_lab.api._errors import ApiError, RateLimited

__all__ = ["RetryPolicy", "parse_retry_after"]


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `Retry-After` (seconds or an HTTP date), or None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `max_retries` retries with backoff `base * multiplier**attempt`, capped and jittered."""

    max_retries: int = 3
    base: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 20.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: ResilienceConfig) -> RetryPolicy:
        return cls(
            max_retries=config.max_retries,
            base=config.backoff_base,
            multiplier=config.backoff_multiplier,
            max_delay=config.backoff_max,
            jitter=config.jitter,
            max_retry_after=config.max_retry_after,
        )

    def delay(self, attempt: int) -> float:
        """Backoff before retry number `attempt + 1`: base * multiplier**attempt, capped, jittered down."""
        raw = min(self.max_delay, self.base * self.multiplier**attempt)
        return raw * (1.0 - self.jitter * self.rng.random())

    def next_delay(self, attempt: int, error: BaseException) -> float | None:
        """Seconds to wait before retrying after `error` on attempt `attempt` (0-based);
        None to give up."""
        if not isinstance(error, ApiError) or not error.retryable or attempt >= self.max_retries:
            return None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None  # the caller re-raises RateLimited with the server's retry_after
            return error.retry_after
        return self.delay(attempt)
