"""Failover across an ordered list of backends: the first that answers wins.

A backend is skipped on any `ApiError` except `InvalidRequest` (the request itself is wrong, so the
next provider would refuse it too). A stream fails over only before its first chunk.

>>> from accelerate_lab.api import Failover, create_api_backend
>>> chain = Failover([create_api_backend("vllm"), create_api_backend("ollama")],
...                  models={"ollama": "llama3.2:1b"})
>>> [b.name for b in chain.backends]
['vllm', 'ollama']
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping, Sequence
from typing import TypeVar

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._errors import AllBackendsFailed, ApiError, ConfigurationError, InvalidRequest
from accelerate_lab.api._types import ChatResponse, Message, StreamChunk

__all__ = ["Failover"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Failover:
    """Tries `backends` in order until one answers; `models` names the model to use per backend name."""

    def __init__(self, backends: Sequence[ApiBackend], models: Mapping[str, str] | None = None) -> None:
        if not backends:
            raise ConfigurationError("Failover needs at least one backend")
        self.backends = list(backends)
        self.models = dict(models or {})

    def __repr__(self) -> str:
        return f"Failover([{', '.join(b.name for b in self.backends)}])"

    def _model(self, backend: ApiBackend, model: str | None) -> str | None:
        return self.models.get(backend.name, model)

    def _fail(self, errors: list[ApiError]) -> AllBackendsFailed:
        detail = "; ".join(
            f"{b.name}: {type(e).__name__}" for b, e in zip(self.backends, errors, strict=False)
        )
        return AllBackendsFailed(f"every backend failed ({detail}); see .errors", errors)

    def _each(self, run: Callable[[ApiBackend], T]) -> T:
        errors: list[ApiError] = []
        for backend in self.backends:
            try:
                return run(backend)
            except InvalidRequest:
                raise
            except ApiError as exc:
                logger.info(
                    "failover: %s failed (%s); trying the next backend", backend.name, type(exc).__name__
                )
                errors.append(exc)
        raise self._fail(errors)

    async def _aeach(self, run: Callable[[ApiBackend], Awaitable[T]]) -> T:
        errors: list[ApiError] = []
        for backend in self.backends:
            try:
                return await run(backend)
            except InvalidRequest:
                raise
            except ApiError as exc:
                logger.info(
                    "failover: %s failed (%s); trying the next backend", backend.name, type(exc).__name__
                )
                errors.append(exc)
        raise self._fail(errors)

    def chat(self, model: str | None, messages: str | Sequence[Message], **opts: object) -> ChatResponse:
        return self._each(lambda b: b.chat(self._model(b, model), messages, **opts))  # type: ignore[arg-type]

    async def achat(
        self, model: str | None, messages: str | Sequence[Message], **opts: object
    ) -> ChatResponse:
        return await self._aeach(lambda b: b.achat(self._model(b, model), messages, **opts))  # type: ignore[arg-type]

    def embed(self, model: str | None, texts: str | Sequence[str], **opts: object) -> list[list[float]]:
        return self._each(lambda b: b.embed(self._model(b, model), texts, **opts))  # type: ignore[arg-type]

    async def aembed(
        self, model: str | None, texts: str | Sequence[str], **opts: object
    ) -> list[list[float]]:
        return await self._aeach(lambda b: b.aembed(self._model(b, model), texts, **opts))  # type: ignore[arg-type]

    def stream_chat(
        self, model: str | None, messages: str | Sequence[Message], **opts: object
    ) -> Generator[StreamChunk, None, None]:
        errors: list[ApiError] = []
        for backend in self.backends:
            started = False
            try:
                for chunk in backend.stream_chat(self._model(backend, model), messages, **opts):  # type: ignore[arg-type]
                    started = True
                    yield chunk
                return
            except InvalidRequest:
                raise
            except ApiError as exc:
                if started:
                    raise
                errors.append(exc)
        raise self._fail(errors)

    async def astream_chat(
        self, model: str | None, messages: str | Sequence[Message], **opts: object
    ) -> AsyncGenerator[StreamChunk, None]:
        errors: list[ApiError] = []
        for backend in self.backends:
            started = False
            try:
                async for chunk in backend.astream_chat(self._model(backend, model), messages, **opts):  # type: ignore[arg-type]
                    started = True
                    yield chunk
                return
            except InvalidRequest:
                raise
            except ApiError as exc:
                if started:
                    raise
                errors.append(exc)
        raise self._fail(errors)
