"""API backends: many providers, local and remote, behind one resilient layer.

Every backend has the same core (`chat`, `stream_chat`, `embed`, `list_models`, each with an async
`a...` form) over one shared layer: a bounded priority queue, retries with backoff that honour
`Retry-After`, a circuit breaker per endpoint, load balancing over replicas, timeouts everywhere,
and typed errors deriving from `ApiError`. Keys are `Secret`s and never printed.

>>> from accelerate_lab.api import create_api_backend, get_available_backends
>>> "openai" in get_available_backends()
True
>>> from accelerate_lab.api.testing import LocalServer, sample_routes
>>> with LocalServer(sample_routes()) as server:
...     b = create_api_backend("sample", metadata={"sample_api_url": server.url})
...     [c.text for c in b.stream_chat(None, "hi there")]
['echo:', ' hi', ' there', '']
"""

from __future__ import annotations

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._breaker import BreakerStats, CircuitBreaker, CircuitState
from accelerate_lab.api._config import ResilienceConfig
from accelerate_lab.api._endpoints import Endpoint, EndpointPool
from accelerate_lab.api._errors import (
    AllBackendsFailed,
    ApiError,
    AuthenticationFailed,
    BackendNotFound,
    CircuitOpen,
    ConfigurationError,
    ConnectionFailed,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    ProviderError,
    QueueFull,
    QueueTimeout,
    RateLimited,
    RequestTimeout,
    StreamInterrupted,
    UnsupportedOperation,
)
from accelerate_lab.api._failover import Failover
from accelerate_lab.api._queue import RequestQueue
from accelerate_lab.api._registry import (
    create_api_backend,
    find_compatible_backend,
    get_available_backends,
    register_backend,
    reset_backends,
    unregister_backend,
)
from accelerate_lab.api._retry import RetryPolicy, parse_retry_after
from accelerate_lab.api._secret import Secret
from accelerate_lab.api._types import ChatResponse, Priority, StreamChunk, ToolCall, Usage

__all__ = [
    "AllBackendsFailed",
    "ApiBackend",
    "ApiError",
    "AuthenticationFailed",
    "BackendNotFound",
    "BreakerStats",
    "ChatResponse",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "ConfigurationError",
    "ConnectionFailed",
    "Endpoint",
    "EndpointPool",
    "Failover",
    "InvalidRequest",
    "MalformedResponse",
    "NotFound",
    "Priority",
    "ProviderError",
    "QueueFull",
    "QueueTimeout",
    "RateLimited",
    "RequestQueue",
    "RequestTimeout",
    "ResilienceConfig",
    "RetryPolicy",
    "Secret",
    "StreamChunk",
    "StreamInterrupted",
    "ToolCall",
    "UnsupportedOperation",
    "Usage",
    "create_api_backend",
    "find_compatible_backend",
    "get_available_backends",
    "parse_retry_after",
    "register_backend",
    "reset_backends",
    "unregister_backend",
]
