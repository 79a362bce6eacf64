"""Google Gemini (Generative Language API, v1beta): chat, streaming, embeddings, inline images.

Key from `gemini_api_key`, `GEMINI_API_KEY` or `GOOGLE_API_KEY`, sent in the `x-goog-api-key`
header (never in the URL, so it cannot leak into logs).

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("gemini", metadata={"gemini_api_key": "AIza-test"}).get_default_model()
'gemini-2.0-flash'
"""

from __future__ import annotations

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._layer import StreamDecoder
from accelerate_lab.api._types import ChatResponse, HttpRequest, HttpResponse, Message, StreamChunk
from accelerate_lab.api.protocols import gemini as proto

__all__ = ["Backend", "GeminiBackend"]


class GeminiBackend(ApiBackend):
    name = "gemini"
    default_url = "https://generativelanguage.googleapis.com/v1beta"
    default_model = "gemini-2.0-flash"
    key_env = ("GOOGLE_API_KEY",)
    default_embed_model = "text-embedding-004"
    requires_key = True

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key.reveal()} if self.api_key else {}

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        return proto.generate_request(model, messages, opts, stream)

    def _parse_chat(self, response: HttpResponse) -> ChatResponse:
        return proto.parse_generate(response)

    def _stream_decoder(self) -> StreamDecoder[StreamChunk]:
        return proto.GenerateStreamDecoder()

    def _embed_request(self, model: str, texts: list[str], opts: dict[str, object]) -> HttpRequest:
        return proto.embed_request(model, texts, opts)

    def _parse_embed(self, response: HttpResponse) -> list[list[float]]:
        return proto.parse_embed(response)

    def _models_request(self) -> HttpRequest:
        return HttpRequest("GET", "/models")

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return proto.parse_models(response)


Backend = GeminiBackend
