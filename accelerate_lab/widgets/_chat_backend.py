"""Choosing a chat backend and streaming a reply, falling over to the next backend before the first token.

Shared by the ``Chat`` widget and the ``%%chat`` magic; no widget code. With no key configured for a
hosted provider, chat goes to ``local`` (the embedded SmolLM2), so it works out of the box. Keys stay
in the backends' ``Secret``s: nothing here returns or formats one.

>>> parse_target("claude:claude-3-5-haiku-latest")
('claude', 'claude-3-5-haiku-latest')
>>> parse_target("llama3.2:1b")  # an Ollama tag, not a backend prefix
(None, 'llama3.2:1b')
>>> parse_target("local")
('local', None)
>>> from accelerate_lab.api.testing import LocalServer, sample_routes
>>> with LocalServer(sample_routes()) as server:
...     route = [Attempt("sample", None, {"sample_api_url": server.url})]
...     "".join(piece.text for piece in stream_reply(route, [{"role": "user", "content": "hi"}]))
'echo: hi'
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from accelerate_lab.api import (
    AllBackendsFailed,
    ApiBackend,
    ApiError,
    CircuitOpen,
    ConfigurationError,
    InvalidRequest,
    RateLimited,
    create_api_backend,
    find_compatible_backend,
    get_available_backends,
)
from accelerate_lab.api._types import Message

__all__ = [
    "LOCAL",
    "Attempt",
    "Piece",
    "available_backends",
    "default_backend",
    "describe_error",
    "parse_target",
    "plan_route",
    "stream_reply",
]

logger = logging.getLogger(__name__)

LOCAL = "local"
# hosted providers tried, in this order, when no backend is named: the first with a key wins
KEYED = ("openai", "claude", "gemini", "groq")


def _register_local() -> None:
    """The local backend registers itself when its module is imported."""
    if LOCAL not in get_available_backends():
        try:
            importlib.import_module("accelerate_lab.api.backends.local")
        except ImportError as error:  # an install without the llm extra: chat names what is missing
            logger.info("the local chat backend is unavailable: %s", error)


def available_backends() -> list[str]:
    """Every registered backend, ``local`` included when it can be loaded."""
    _register_local()
    return get_available_backends()


def parse_target(spec: str | None) -> tuple[str | None, str | None]:
    """``"[backend:]model"`` -> ``(backend, model)``; a prefix counts only if it names a backend, and a
    bare backend name picks that backend's default model."""
    spec = (spec or "").strip()
    if not spec:
        return None, None
    if spec in available_backends():
        return spec, None
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in available_backends():
        return prefix, rest or None
    return None, spec


def _has_key(name: str, metadata: Mapping[str, object]) -> bool:
    if metadata.get(f"{name}_api_key") or os.environ.get(f"{name.upper()}_API_KEY"):
        return True
    try:
        module = importlib.import_module(f"accelerate_lab.api.backends.{name}")
    except ImportError:
        return False
    backend_cls: type[ApiBackend] = module.Backend
    return any(os.environ.get(env) for env in backend_cls.key_env)


def default_backend(model: str | None = None, metadata: Mapping[str, object] | None = None) -> str:
    """The backend for ``model`` (by its name's rules), else the first hosted one with a key, else local."""
    metadata = metadata or {}
    if model:
        found = find_compatible_backend(model)
        if found is not None:
            return found
    return next((name for name in KEYED if _has_key(name, metadata)), LOCAL)


@dataclass(frozen=True)
class Attempt:
    """One backend to try: by name (created with ``metadata``) or an already configured backend."""

    backend: str | ApiBackend
    model: str | None = None
    metadata: Mapping[str, object] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.backend if isinstance(self.backend, str) else self.backend.name

    def open(self, cache: dict[str, ApiBackend] | None = None) -> ApiBackend:
        """The backend, created once per ``cache`` (its circuit breakers and connections persist)."""
        if not isinstance(self.backend, str):
            return self.backend
        if cache is not None and self.backend in cache:
            return cache[self.backend]
        if self.backend == LOCAL:
            _register_local()
        created = create_api_backend(self.backend, metadata=self.metadata)
        if cache is not None:
            cache[self.backend] = created
        return created


def plan_route(
    backend: str | ApiBackend | None,
    model: str | None,
    metadata: Mapping[str, object] | None = None,
    failover: Sequence[str] = (LOCAL,),
) -> list[Attempt]:
    """The backends to try in order: the chosen one, then each of ``failover`` (with its default model)."""
    metadata = dict(metadata or {})
    first = Attempt(backend if backend is not None else default_backend(model, metadata), model, metadata)
    route = [first]
    route += [Attempt(name, None, metadata) for name in failover if name != first.name]
    return route


@dataclass(frozen=True)
class Piece:
    """Text as it streams; ``backend``/``model`` say who answers; ``failover`` is set on the first piece
    from a backend that was not the first choice (why the earlier ones failed)."""

    text: str
    backend: str
    model: str
    failover: str | None = None
    done: bool = False


def describe_error(error: BaseException) -> tuple[str, str]:
    """``(kind, message)`` for a view: rate-limit, circuit-open, config, failover or api."""
    if isinstance(error, RateLimited):
        wait = f"; retry in {error.retry_after:g} s" if error.retry_after else ""
        return "rate-limit", f"Rate limited by the provider{wait}. {error}"
    if isinstance(error, CircuitOpen):
        retry = f"retry in {error.retry_in:.0f} s"
        return "circuit-open", f"Circuit open: recent calls failed, this one was not sent ({retry}). {error}"
    if isinstance(error, ConfigurationError):
        return "config", str(error)
    if isinstance(error, AllBackendsFailed) and error.errors:
        # titled by the first backend's failure (the one the user chose), each one's reason listed
        kind = describe_error(error.errors[0])[0]
        return kind, "every backend failed. " + " ".join(describe_error(e)[1] for e in error.errors)
    return "api", f"{type(error).__name__}: {error}"


def stream_reply(
    route: Sequence[Attempt],
    messages: Sequence[Message],
    should_stop: Callable[[], bool] = lambda: False,
    cache: dict[str, ApiBackend] | None = None,
    **options: object,
) -> Iterator[Piece]:
    """Stream the first answer along ``route``: a backend that fails before its first token (or cannot
    be configured) hands over to the next; after a token, its errors are raised. Stops when
    ``should_stop()`` turns true (the stream is closed, cancelling the request). Backends made by
    name are kept in ``cache`` for the next call."""
    failures: list[str] = []
    errors: list[ApiError] = []
    for attempt in route:
        started = False
        try:
            backend = attempt.open(cache)
            model = attempt.model or backend.get_default_model()
            chunks = backend.stream_chat(model, list(messages), **options)  # type: ignore[arg-type]
            try:
                for chunk in chunks:
                    if should_stop():
                        return
                    note = "; ".join(failures) if failures and not started else None
                    started = True
                    yield Piece(chunk.text, backend.name, model, note, chunk.done)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            return
        except InvalidRequest:
            raise
        except ApiError as error:
            if started:
                raise
            errors.append(error)
            kind, _ = describe_error(error)
            failures.append(f"{attempt.name} failed ({kind}: {type(error).__name__})")
            logger.info("chat: %s failed before its first token (%s); trying the next", attempt.name, error)
    if len(errors) == 1:
        raise errors[0]
    raise AllBackendsFailed("every chat backend failed: " + "; ".join(failures), errors)
