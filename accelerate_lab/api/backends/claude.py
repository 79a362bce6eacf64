"""Anthropic Claude through the Messages API: system prompt, tool-use blocks, images, SSE events.

Base URL form `https://api.anthropic.com` (paths add `/v1/...`); key from `claude_api_key`,
`CLAUDE_API_KEY` or `ANTHROPIC_API_KEY`. `max_tokens` defaults to 1024.

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("claude", metadata={"claude_api_key": "sk-ant-test"}).get_default_model()
'claude-3-5-haiku-latest'
"""

from __future__ import annotations

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._layer import StreamDecoder
from accelerate_lab.api._types import ChatResponse, HttpRequest, HttpResponse, Message, StreamChunk
from accelerate_lab.api.protocols import anthropic as proto

__all__ = ["Backend", "ClaudeBackend"]


class ClaudeBackend(ApiBackend):
    name = "claude"
    default_url = "https://api.anthropic.com"
    default_model = "claude-3-5-haiku-latest"
    key_env = ("ANTHROPIC_API_KEY",)
    requires_key = True

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": proto.API_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key.reveal()
        return headers

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        return proto.messages_request(model, messages, opts, stream)

    def _parse_chat(self, response: HttpResponse) -> ChatResponse:
        return proto.parse_message(response)

    def _stream_decoder(self) -> StreamDecoder[StreamChunk]:
        return proto.MessagesStreamDecoder()

    def _models_request(self) -> HttpRequest:
        return proto.models_request()

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return proto.parse_models(response)


Backend = ClaudeBackend
