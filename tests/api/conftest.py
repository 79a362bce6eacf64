"""Fixtures: local HTTP servers on 127.0.0.1 (real sockets) and backends pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from accelerate_lab.api import ApiBackend, create_api_backend, reset_backends
from accelerate_lab.api.testing import Handler, LocalServer

# Fast resilience settings so fault tests take milliseconds, not the production backoff.
FAST: dict[str, object] = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 2.0, "max_retries": 3}

Serve = Callable[[Mapping[str, Handler]], LocalServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[LocalServer] = []

    def start(routes: Mapping[str, Handler]) -> LocalServer:
        server = LocalServer(routes)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def backend_for(
    name: str, url: str | Sequence[str], key: str = "test-key-0123456789", **settings: object
) -> ApiBackend:
    """A backend of `name` aimed at `url`, with fast retries unless `settings` say otherwise."""
    metadata = {f"{name}_api_url": url, f"{name}_api_key": key, **FAST, **settings}
    return create_api_backend(name, metadata=metadata)


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    yield
    reset_backends()
