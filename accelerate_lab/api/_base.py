"""`ApiBackend`: the base every provider's backend subclasses.

A subclass names its defaults and fills in the hooks that turn calls into `HttpRequest`s and
responses into results (pure functions from `accelerate_lab.api.protocols`); the base class gives
every operation a sync and an async form over the shared resilience layer. See
`backends/sample.py` for a complete, commented template.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from accelerate_lab.api._config import ResilienceConfig
from accelerate_lab.api._endpoints import EndpointPool, Strategy
from accelerate_lab.api._errors import ConfigurationError, UnsupportedOperation
from accelerate_lab.api._layer import Resilience, StreamDecoder
from accelerate_lab.api._secret import Secret
from accelerate_lab.api._transport import Signer, Transport
from accelerate_lab.api._types import (
    ChatResponse,
    HttpRequest,
    HttpResponse,
    Message,
    Priority,
    StreamChunk,
    as_messages,
)

__all__ = ["ApiBackend"]

T = TypeVar("T")
Settings = Mapping[str, object]


class ApiBackend:
    """One configured provider: `chat`, `stream_chat`, `embed`, `list_models` (and `a`-prefixed async
    forms), plus whatever the provider adds. Settings come from `metadata` / `resources`
    (`<name>_api_key`, `<name>_api_url`, `max_retries`, `timeout`, `max_concurrent_requests`,
    `circuit_failure_threshold`, `circuit_reset_timeout`, `load_balancing`), then the environment.
    """

    name: ClassVar[str] = ""
    default_url: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    default_embed_model: ClassVar[str] = ""  # embed(None, ...) uses it, else the default model
    key_env: ClassVar[tuple[str, ...]] = ()  # extra environment names for the key, after <NAME>_API_KEY
    requires_key: ClassVar[bool] = False
    health_path: ClassVar[str | None] = None  # from the server's root; enables active health checks

    def __init__(self, resources: Settings | None = None, metadata: Settings | None = None) -> None:
        resources = dict(resources or {})
        metadata = dict(metadata or {})
        self.config = ResilienceConfig.from_settings(resources, metadata)
        self.api_key = Secret(self._setting(metadata, "api_key", self.key_env) or "")
        urls = metadata.get(f"{self.name}_api_url") or os.environ.get(f"{self.name.upper()}_API_URL")
        urls = urls or self.default_url
        if self.requires_key and not self.api_key and urls == self.default_url:
            # The provider's own service needs a key; a self-hosted compatible server may not.
            raise ConfigurationError(
                f"{self.name}: no API key; pass metadata={{'{self.name}_api_key': ...}} or set "
                f"{self.name.upper()}_API_KEY"
            )
        if not isinstance(urls, (str, list, tuple)):
            raise ConfigurationError(f"{self.name}_api_url must be a URL, a comma-separated list or a list")
        strategy = str(metadata.get("load_balancing", resources.get("load_balancing", "round_robin")))
        self.pool = EndpointPool(urls, self.config, strategy=strategy_of(strategy), name=self.name)
        self._default = str(metadata.get(f"{self.name}_model", "") or self.default_model)
        self._setup(metadata)
        self.transport = Transport(
            self.name,
            self.config,
            headers=self.auth_headers(),
            secrets=self.secrets(),
            signer=self.signer(),
            verify=bool(metadata.get("verify_tls", True)),
        )
        health = HttpRequest("GET", self.health_path, from_root=True) if self.health_path else None
        self.layer = Resilience(self.name, self.config, self.pool, self.transport, health)

    def _setting(self, metadata: Settings, key: str, extra_env: Sequence[str] = ()) -> str | None:
        value = metadata.get(f"{self.name}_{key}")
        if value:
            return str(value.reveal() if isinstance(value, Secret) else value)
        for env in (f"{self.name.upper()}_{key.upper()}", *extra_env):
            if os.environ.get(env):
                return os.environ[env]
        return None

    # --- hooks for subclasses -------------------------------------------------------------------
    def _setup(self, metadata: Settings) -> None:
        """Reads backend-specific settings (before the transport is made, so headers may use them)."""

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.reveal()}"} if self.api_key else {}

    def secrets(self) -> list[Secret]:
        return [self.api_key]

    def signer(self) -> Signer | None:
        return None

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        raise self._unsupported("chat")

    def _parse_chat(self, response: HttpResponse) -> ChatResponse:
        raise self._unsupported("chat")

    def _stream_decoder(self) -> StreamDecoder[StreamChunk]:
        raise self._unsupported("stream_chat")

    def _embed_request(self, model: str, texts: list[str], opts: dict[str, object]) -> HttpRequest:
        raise self._unsupported("embed")

    def _parse_embed(self, response: HttpResponse) -> list[list[float]]:
        raise self._unsupported("embed")

    def _models_request(self) -> HttpRequest:
        raise self._unsupported("list_models")

    def _parse_models(self, response: HttpResponse) -> list[str]:
        raise self._unsupported("list_models")

    def _unsupported(self, what: str) -> UnsupportedOperation:
        return UnsupportedOperation(f"{self.name} has no {what}; see get_available_backends() for others")

    # --- plumbing shared by every operation -----------------------------------------------------
    def _call(
        self, req: HttpRequest, parse: Callable[[HttpResponse], T], priority: Priority, timeout: float | None
    ) -> T:
        return self.layer.call(req, parse, priority=priority, timeout=timeout)

    def _acall(
        self, req: HttpRequest, parse: Callable[[HttpResponse], T], priority: Priority, timeout: float | None
    ) -> Coroutine[Any, Any, T]:
        # The layer's coroutine itself, to be awaited by the caller: no extra coroutine per request.
        return self.layer.acall(req, parse, priority=priority, timeout=timeout)

    def _call_each(
        self, req: HttpRequest, parse: Callable[[HttpResponse], T], priority: Priority, timeout: float | None
    ) -> list[T]:
        """The same call on every endpoint (replica), in order: for state every replica must share."""
        return [
            self.layer.call(req, parse, priority=priority, timeout=timeout, endpoint=e)
            for e in self.pool.endpoints
        ]

    async def _acall_each(
        self, req: HttpRequest, parse: Callable[[HttpResponse], T], priority: Priority, timeout: float | None
    ) -> list[T]:
        return list(
            await asyncio.gather(
                *(
                    self.layer.acall(req, parse, priority=priority, timeout=timeout, endpoint=e)
                    for e in self.pool.endpoints
                )
            )
        )

    def _model(self, model: str | None) -> str:
        return model or self.get_default_model()

    # --- the common API -------------------------------------------------------------------------
    def get_default_model(self) -> str:
        if not self._default:
            raise ConfigurationError(
                f"{self.name}: no default model; pass model= or metadata['{self.name}_model']"
            )
        return self._default

    def chat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> ChatResponse:
        """One complete answer. `opts` go to the provider (temperature, max_tokens, tools, system, ...)."""
        req = self._chat_request(self._model(model), as_messages(messages), opts, False)
        return self._call(req, self._parse_chat, priority, timeout)

    async def achat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> ChatResponse:
        req = self._chat_request(self._model(model), as_messages(messages), opts, False)
        return await self._acall(req, self._parse_chat, priority, timeout)

    def stream_chat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> Generator[StreamChunk, None, None]:
        """Chunks as they arrive; the last has `done=True`. Close the iterator to cancel."""
        req = self._chat_request(self._model(model), as_messages(messages), opts, True)
        return self.layer.stream(req, self._stream_decoder, priority=priority, timeout=timeout)

    def astream_chat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> AsyncGenerator[StreamChunk, None]:
        req = self._chat_request(self._model(model), as_messages(messages), opts, True)
        return self.layer.astream(req, self._stream_decoder, priority=priority, timeout=timeout)

    def embed(
        self,
        model: str | None,
        texts: str | Sequence[str],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> list[list[float]]:
        """One vector per text, in order."""
        items = [texts] if isinstance(texts, str) else list(texts)
        model = model or self.default_embed_model or None
        return self._call(
            self._embed_request(self._model(model), items, opts), self._parse_embed, priority, timeout
        )

    async def aembed(
        self,
        model: str | None,
        texts: str | Sequence[str],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> list[list[float]]:
        items = [texts] if isinstance(texts, str) else list(texts)
        model = model or self.default_embed_model or None
        return await self._acall(
            self._embed_request(self._model(model), items, opts), self._parse_embed, priority, timeout
        )

    def list_models(self, *, priority: Priority = Priority.NORMAL, timeout: float | None = None) -> list[str]:
        return self._call(self._models_request(), self._parse_models, priority, timeout)

    async def alist_models(
        self, *, priority: Priority = Priority.NORMAL, timeout: float | None = None
    ) -> list[str]:
        return await self._acall(self._models_request(), self._parse_models, priority, timeout)

    def check_health(self) -> list[bool]:
        """Probes each endpoint (replica) now; unhealthy ones leave the rotation until they pass."""
        return self.layer.check_health()

    async def acheck_health(self) -> list[bool]:
        return await self.layer.acheck_health()

    def status(self) -> dict[str, object]:
        """Queue and endpoint state for a notebook or a widget; holds no credentials."""
        return {
            "backend": self.name,
            "active": self.layer.queue.active,
            "waiting": self.layer.queue.waiting,
            "rejected": self.layer.queue.rejected,
            "endpoints": self.pool.status(),
        }

    def close(self) -> None:
        self.transport.close()

    async def aclose(self) -> None:
        await self.transport.aclose()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        urls = ",".join(e.url for e in self.pool.endpoints)
        return f"<{type(self).__name__} {self.name} url={urls} key={self.api_key}>"


def strategy_of(value: str) -> Strategy:
    if value == "least_loaded":
        return "least_loaded"
    if value == "round_robin":
        return "round_robin"
    raise ConfigurationError(f"load_balancing={value!r}: use 'round_robin' or 'least_loaded'")
