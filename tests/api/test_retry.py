"""Backoff, jitter and Retry-After parsing."""

from __future__ import annotations

import email.utils
import random

from hypothesis import given
from hypothesis import strategies as st

from accelerate_lab.api import (
    AuthenticationFailed,
    ConnectionFailed,
    ProviderError,
    RateLimited,
    RetryPolicy,
    parse_retry_after,
)


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=1_000_000) == 10.0


@given(attempt=st.integers(0, 10), seed=st.integers(0, 2**32 - 1))
def test_backoff_is_bounded_and_jittered_downwards(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base=0.5, multiplier=2, max_delay=8, jitter=0.5, rng=random.Random(seed))
    raw = min(8.0, 0.5 * 2**attempt)
    assert raw * 0.5 <= policy.delay(attempt) <= raw


def test_only_retryable_errors_are_retried() -> None:
    policy = RetryPolicy(max_retries=2, jitter=0.0)
    assert policy.next_delay(0, ProviderError("x", status=503)) == 0.5
    assert policy.next_delay(0, ConnectionFailed("x")) == 0.5
    assert policy.next_delay(0, ProviderError("x", status=400)) is None
    assert policy.next_delay(0, AuthenticationFailed("x", status=401)) is None
    assert policy.next_delay(2, ProviderError("x", status=503)) is None  # exhausted
    assert policy.next_delay(0, ValueError("not ours")) is None


def test_retry_after_is_honoured_up_to_a_cap() -> None:
    policy = RetryPolicy(max_retry_after=30)
    assert policy.next_delay(0, RateLimited("x", retry_after=7.0)) == 7.0
    assert policy.next_delay(0, RateLimited("x", retry_after=120.0)) is None
