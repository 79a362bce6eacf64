"""Hugging Face Text Generation Inference: /generate, /generate_stream (SSE), /info, and its
OpenAI-compatible Messages API (`/v1/chat/completions`) for `chat` and `stream_chat`.

Several TGI servers of one model (comma-separated `hf_tgi_api_url`) are load-balanced and
health-checked at `/health`.

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("hf_tgi").get_default_model()
'tgi'
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from accelerate_lab.api._types import HttpRequest, HttpResponse, Message, Priority, StreamChunk
from accelerate_lab.api.backends._openai_compat import OpenAICompatible
from accelerate_lab.api.protocols import huggingface as proto
from accelerate_lab.api.protocols import openai as openai_proto
from accelerate_lab.api.protocols.huggingface import Generation

__all__ = ["Backend", "Generation", "HfTgiBackend"]

P = Priority.NORMAL
INFO = HttpRequest("GET", "/info")


def _model_id(response: HttpResponse) -> list[str]:
    return [str(proto.parse_info(response)["model_id"])]


class HfTgiBackend(OpenAICompatible):
    name = "hf_tgi"
    default_url = "http://localhost:8080"
    default_model = "tgi"  # the Messages API accepts any name for the one served model
    key_env = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    health_path = "/health"

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        return openai_proto.chat_request(
            model, messages, opts, stream, include_usage=False, path="/v1/chat/completions"
        )

    def _models_request(self) -> HttpRequest:
        return INFO

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return _model_id(response)

    def _embed_request(self, model: str, texts: list[str], opts: dict[str, object]) -> HttpRequest:
        raise self._unsupported("embed (use hf_tei)")

    def generate(
        self, prompt: str, *, priority: Priority = P, timeout: float | None = None, **parameters: object
    ) -> Generation:
        """Raw completion; `parameters`: max_new_tokens, temperature, top_p, stop, seed, ..."""
        return self._call(
            proto.generate_request(prompt, parameters, False), proto.parse_generation, priority, timeout
        )

    async def agenerate(
        self, prompt: str, *, priority: Priority = P, timeout: float | None = None, **parameters: object
    ) -> Generation:
        return await self._acall(
            proto.generate_request(prompt, parameters, False), proto.parse_generation, priority, timeout
        )

    def stream_generate(
        self, prompt: str, *, priority: Priority = P, timeout: float | None = None, **parameters: object
    ) -> Iterator[StreamChunk]:
        return self.layer.stream(
            proto.generate_request(prompt, parameters, True),
            proto.GenerateStreamDecoder,
            priority=priority,
            timeout=timeout,
        )

    def astream_generate(
        self, prompt: str, *, priority: Priority = P, timeout: float | None = None, **parameters: object
    ) -> AsyncIterator[StreamChunk]:
        return self.layer.astream(
            proto.generate_request(prompt, parameters, True),
            proto.GenerateStreamDecoder,
            priority=priority,
            timeout=timeout,
        )

    def info(self, *, priority: Priority = P, timeout: float | None = None) -> dict[str, Any]:
        return self._call(INFO, proto.parse_info, priority, timeout)

    async def ainfo(self, *, priority: Priority = P, timeout: float | None = None) -> dict[str, Any]:
        return await self._acall(INFO, proto.parse_info, priority, timeout)


Backend = HfTgiBackend
