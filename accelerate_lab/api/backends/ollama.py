"""Ollama: chat and generate (NDJSON streams), embeddings, the local model list, and pulls with progress.

>>> from accelerate_lab.api import create_api_backend
>>> b = create_api_backend("ollama")
>>> b.pool.endpoints[0].url, b.get_default_model()
('http://localhost:11434', 'llama3.2')
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._errors import StreamInterrupted
from accelerate_lab.api._layer import StreamDecoder
from accelerate_lab.api._types import ChatResponse, HttpRequest, HttpResponse, Message, Priority, StreamChunk
from accelerate_lab.api.protocols import ollama as proto
from accelerate_lab.api.protocols.ollama import PullProgress

__all__ = ["Backend", "OllamaBackend", "PullProgress"]

P = Priority.NORMAL


class OllamaBackend(ApiBackend):
    name = "ollama"
    default_url = "http://localhost:11434"
    default_model = "llama3.2"
    default_embed_model = "all-minilm"
    health_path = "/api/version"

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        return proto.chat_request(model, messages, opts, stream)

    def _parse_chat(self, response: HttpResponse) -> ChatResponse:
        return proto.parse_chat(response)

    def _stream_decoder(self) -> StreamDecoder[StreamChunk]:
        return proto.ChatStreamDecoder()

    def _embed_request(self, model: str, texts: list[str], opts: dict[str, object]) -> HttpRequest:
        return proto.embed_request(model, texts, opts)

    def _parse_embed(self, response: HttpResponse) -> list[list[float]]:
        return proto.parse_embed(response)

    def _models_request(self) -> HttpRequest:
        return HttpRequest("GET", "/api/tags")

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return proto.parse_tags(response)

    def generate(
        self,
        model: str | None,
        prompt: str,
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> ChatResponse:
        """Raw completion through /api/generate (no chat template applied when `raw=True`)."""
        req = proto.generate_request(self._model(model), prompt, opts, False)
        return self._call(req, proto.parse_generate, priority, timeout)

    async def agenerate(
        self,
        model: str | None,
        prompt: str,
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> ChatResponse:
        req = proto.generate_request(self._model(model), prompt, opts, False)
        return await self._acall(req, proto.parse_generate, priority, timeout)

    def stream_generate(
        self,
        model: str | None,
        prompt: str,
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> Iterator[StreamChunk]:
        req = proto.generate_request(self._model(model), prompt, opts, True)
        return self.layer.stream(
            req, partial(proto.ChatStreamDecoder, field="response"), priority=priority, timeout=timeout
        )

    def astream_generate(
        self,
        model: str | None,
        prompt: str,
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> AsyncIterator[StreamChunk]:
        req = proto.generate_request(self._model(model), prompt, opts, True)
        return self.layer.astream(
            req, partial(proto.ChatStreamDecoder, field="response"), priority=priority, timeout=timeout
        )

    def stream_pull(
        self, model: str, *, priority: Priority = P, timeout: float | None = None
    ) -> Iterator[PullProgress]:
        """Progress events of `ollama pull`; the last has status "success"."""
        return self.layer.stream(
            proto.pull_request(model), proto.PullStreamDecoder, priority=priority, timeout=timeout
        )

    def astream_pull(
        self, model: str, *, priority: Priority = P, timeout: float | None = None
    ) -> AsyncIterator[PullProgress]:
        return self.layer.astream(
            proto.pull_request(model), proto.PullStreamDecoder, priority=priority, timeout=timeout
        )

    def pull(
        self,
        model: str,
        progress: Callable[[PullProgress], None] | None = None,
        *,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> PullProgress:
        """Pulls `model`, calling `progress(event)` for each event (a tqdm bar, for instance)."""
        last = None
        for last in self.stream_pull(model, priority=priority, timeout=timeout):
            if progress is not None:
                progress(last)
        if last is None:
            raise StreamInterrupted(f"ollama: pull of {model} reported nothing")
        return last

    async def apull(
        self,
        model: str,
        progress: Callable[[PullProgress], None] | None = None,
        *,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> PullProgress:
        last = None
        async for last in self.astream_pull(model, priority=priority, timeout=timeout):
            if progress is not None:
                progress(last)
        if last is None:
            raise StreamInterrupted(f"ollama: pull of {model} reported nothing")
        return last


Backend = OllamaBackend
