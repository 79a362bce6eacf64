"""Typed errors of the API layer: every one derives from `ApiError`, itself an `AccelerateLabError`.

Each error says whether retrying could help (`retryable`) and, where a server answered, carries the
status and the (redacted, truncated) body.

>>> from accelerate_lab.api import RateLimited, ApiError
>>> err = RateLimited("openai: rate limited", status=429, body="{}", retry_after=2.0)
>>> isinstance(err, ApiError), err.retryable, err.retry_after
(True, True, 2.0)
"""

from __future__ import annotations

from collections.abc import Sequence

from accelerate_lab.errors import AccelerateLabError

__all__ = [
    "AllBackendsFailed",
    "ApiError",
    "AuthenticationFailed",
    "BackendNotFound",
    "CircuitOpen",
    "ConfigurationError",
    "ConnectionFailed",
    "InvalidRequest",
    "MalformedResponse",
    "NotFound",
    "ProviderError",
    "QueueFull",
    "QueueTimeout",
    "RateLimited",
    "RequestTimeout",
    "StreamInterrupted",
    "UnsupportedOperation",
]

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class ApiError(AccelerateLabError):
    """Base of every error the API layer raises."""

    retryable: bool = False


class ConfigurationError(ApiError, ValueError):
    """A backend was configured wrongly: a missing key, an unknown option, a bad URL."""


class BackendNotFound(ApiError, LookupError):
    """No backend is registered under that name."""


class UnsupportedOperation(ApiError, NotImplementedError):
    """The provider has no such operation (for example embeddings on Claude)."""


class QueueFull(ApiError):
    """The request queue is at its bounded size; the request was refused, not dropped silently."""


class QueueTimeout(ApiError, TimeoutError):
    """A request waited in the queue longer than `queue_timeout` without getting a slot."""


class RequestTimeout(ApiError, TimeoutError):
    """The server did not answer (connect, read, or whole body) within the timeout."""

    retryable = True


class ConnectionFailed(ApiError, ConnectionError):
    """The connection could not be made or was reset before a complete answer."""

    retryable = True


class CircuitOpen(ApiError):
    """Every endpoint's circuit breaker is open: the call failed fast without reaching a server."""

    def __init__(self, message: str, *, retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class MalformedResponse(ApiError):
    """The server answered 2xx with a body that is not in the provider's wire format."""


class StreamInterrupted(ApiError):
    """A stream broke or ended before its final event, after some chunks were delivered."""


class ProviderError(ApiError):
    """The provider answered with an error status; `status` and `body` say what it said."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.request_id = request_id
        self.retryable = status in RETRYABLE_STATUSES or status >= 500


class AuthenticationFailed(ProviderError):
    """401/403: the key is missing, wrong, or lacks permission. Retrying will not help."""


class InvalidRequest(ProviderError):
    """400/422: the provider rejected the request's content."""


class NotFound(ProviderError):
    """404: no such model, route, or object."""


class RateLimited(ProviderError):
    """429: too many requests; `retry_after` is the server's `Retry-After` in seconds, if it sent one."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        body: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body, request_id=request_id)
        self.retry_after = retry_after


class AllBackendsFailed(ApiError):
    """Failover tried every backend in order; `errors` holds each one's error, in order."""

    def __init__(self, message: str, errors: Sequence[ApiError]) -> None:
        super().__init__(message)
        self.errors = tuple(errors)
