"""Resilience settings, read from a backend's `resources` or `metadata` (same keys in both)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from accelerate_lab.api._errors import ConfigurationError

__all__ = ["ResilienceConfig"]


@dataclass(frozen=True)
class ResilienceConfig:
    """Every knob of the shared resilience layer; all times in seconds.

    `timeout` bounds each attempt (connect, every read, and the whole body of a non-streamed answer);
    streams are bounded per read, so a long generation is fine but a stalled one is not.

    >>> ResilienceConfig.from_settings({"max_retries": "2"}, {"timeout": 5}).max_retries
    2
    """

    max_retries: int = 3
    timeout: float = 60.0
    connect_timeout: float = 10.0
    queue_timeout: float | None = None  # None: wait up to `timeout` for a slot
    max_concurrent_requests: int = 16
    max_queue_size: int = 1024
    circuit_failure_threshold: int = 5
    circuit_reset_timeout: float = 30.0
    circuit_half_open_max_calls: int = 1
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    backoff_multiplier: float = 2.0
    jitter: float = 0.5  # fraction of each delay drawn at random (0: none, 1: full jitter)
    max_retry_after: float = 60.0  # a longer Retry-After fails at once with RateLimited
    health_check_interval: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.max_concurrent_requests < 1 or self.max_queue_size < 0:
            raise ConfigurationError(
                f"max_retries={self.max_retries} must be >= 0, max_concurrent_requests="
                f"{self.max_concurrent_requests} >= 1, max_queue_size={self.max_queue_size} >= 0"
            )
        if self.timeout <= 0 or self.circuit_failure_threshold < 1:
            raise ConfigurationError(
                f"timeout={self.timeout} must be > 0 and circuit_failure_threshold="
                f"{self.circuit_failure_threshold} >= 1"
            )

    @property
    def wait_timeout(self) -> float:
        return self.timeout if self.queue_timeout is None else self.queue_timeout

    @classmethod
    def from_settings(cls, *sources: Mapping[str, object]) -> ResilienceConfig:
        """Later sources win; unknown keys are ignored (they belong to the backend)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for source in sources:
            for key, value in source.items():
                if key not in fields or value is None:
                    continue
                if not isinstance(value, (int, float, str)):
                    raise ConfigurationError(f"{key}={value!r} is not a number")
                kind = int if fields[key].type == "int" else float
                try:
                    values[key] = kind(value)
                except (TypeError, ValueError) as exc:
                    raise ConfigurationError(f"{key}={value!r} is not a number") from exc
        return cls(**values)  # type: ignore[arg-type]
