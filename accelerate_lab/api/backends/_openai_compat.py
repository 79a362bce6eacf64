"""The shared base of every OpenAI-compatible backend (openai, groq, vllm, opea)."""

from __future__ import annotations

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._layer import StreamDecoder
from accelerate_lab.api._types import ChatResponse, HttpRequest, HttpResponse, Message, StreamChunk
from accelerate_lab.api.protocols import openai as proto

__all__ = ["OpenAICompatible"]


class OpenAICompatible(ApiBackend):
    """Chat (tools, SSE streaming), embeddings and the model list in the OpenAI wire format."""

    include_usage_in_stream = True

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        return proto.chat_request(model, messages, opts, stream, include_usage=self.include_usage_in_stream)

    def _parse_chat(self, response: HttpResponse) -> ChatResponse:
        return proto.parse_chat(response)

    def _stream_decoder(self) -> StreamDecoder[StreamChunk]:
        return proto.ChatStreamDecoder()

    def _embed_request(self, model: str, texts: list[str], opts: dict[str, object]) -> HttpRequest:
        return proto.embeddings_request(model, texts, opts)

    def _parse_embed(self, response: HttpResponse) -> list[list[float]]:
        return proto.parse_embeddings(response)

    def _models_request(self) -> HttpRequest:
        return proto.models_request()

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return proto.parse_models(response)
