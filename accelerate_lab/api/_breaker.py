"""A circuit breaker per endpoint: CLOSED -> OPEN after `failure_threshold` consecutive failures,
OPEN -> HALF_OPEN after `reset_timeout`, HALF_OPEN -> CLOSED on a successful trial call (or back to
OPEN on a failed one). Thread-safe; the state is observable and listeners hear every transition.

>>> from accelerate_lab.api import CircuitBreaker, CircuitState
>>> b = CircuitBreaker(failure_threshold=2, reset_timeout=30.0)
>>> b.record_failure(); b.record_failure(); b.state
<CircuitState.OPEN: 'open'>
>>> b.allow()
False
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BreakerStats", "CircuitBreaker", "CircuitState"]


class CircuitState(enum.Enum):
    """A breaker's state: CLOSED lets calls through, OPEN refuses them, HALF_OPEN allows trial calls."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Globals: looking a member up on its Enum class takes ten times as long, and every call checks the state.
_CLOSED, _OPEN, _HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


@dataclass(frozen=True)
class BreakerStats:
    """A snapshot of one breaker: its state and failure, success and opening counts."""

    state: CircuitState
    consecutive_failures: int
    total_failures: int
    total_successes: int
    times_opened: int


Listener = Callable[[CircuitState, CircuitState], None]


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; allows a trial call after `reset_timeout` s."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self.name = name
        self._clock = clock
        self._lock = threading.RLock()  # listeners may read the state
        self._state = _CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0
        self._total_failures = 0
        self._total_successes = 0
        self._times_opened = 0
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value}, failures={self._failures})"

    def add_listener(self, listener: Listener) -> None:
        """`listener(old, new)` is called on every transition (from the thread that caused it)."""
        self._listeners.append(listener)

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._current()

    def stats(self) -> BreakerStats:
        with self._lock:
            return BreakerStats(
                self._current(),
                self._failures,
                self._total_failures,
                self._total_successes,
                self._times_opened,
            )

    def retry_in(self) -> float:
        """Seconds until an OPEN breaker lets a trial call through (0 when it would now)."""
        with self._lock:
            if self._state is not _OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def allow(self) -> bool:
        """Asks to make a call. True means go ahead, and the caller must then report the outcome with
        `record_success`, `record_failure` or `record_cancelled`."""
        if self._state is _CLOSED:  # no lock needed: CLOSED has no timed transition to check
            return True
        with self._lock:
            state = self._current()
            if state is _CLOSED:
                return True
            if state is _HALF_OPEN and self._trials < self.half_open_max_calls:
                self._trials += 1
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._total_successes += 1
            self._failures = 0
            if self._state is _HALF_OPEN:
                self._trials = max(0, self._trials - 1)
                self._move(_CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._total_failures += 1
            self._failures += 1
            state = self._current()
            if state is _HALF_OPEN or (state is _CLOSED and self._failures >= self.failure_threshold):
                self._trip()

    def record_cancelled(self) -> None:
        """A permitted call ended without an outcome (cancelled): frees its half-open trial."""
        with self._lock:
            if self._state is _HALF_OPEN:
                self._trials = max(0, self._trials - 1)

    def trip(self) -> None:
        """Opens the breaker now (a failed health check, for example)."""
        with self._lock:
            self._trip()

    def reset(self) -> None:
        """Closes the breaker now and forgets the failure count (a passed health check)."""
        with self._lock:
            self._failures = 0
            self._move(_CLOSED)

    def _trip(self) -> None:
        self._opened_at = self._clock()
        if self._state is not _OPEN:
            self._times_opened += 1
        self._move(_OPEN)

    def _current(self) -> CircuitState:
        if self._state is _OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._move(_HALF_OPEN)
        return self._state

    def _move(self, new: CircuitState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self._trials = 0
        for listener in list(self._listeners):
            listener(old, new)
