"""The reference backend, and the template for a new one.

A backend is two parts in one small file:

1. **Protocol adapter**: pure functions that build `HttpRequest`s and parse `HttpResponse`s and
   stream frames. No I/O, so they are tested on recorded bytes alone.
2. **Backend class**: names its defaults (`name`, `default_url`, `default_model`, key handling) and
   points the base class's hooks at the adapter. `ApiBackend` then provides `chat`/`achat`,
   `stream_chat`/`astream_chat`, `embed`/`aembed`, `list_models`/`alist_models`, all through the
   shared queue, retries, breakers and timeouts. Extra operations are one `_call`/`_acall` line each.

To add a provider: copy this file to `backends/<name>.py`, write its adapter (or reuse one from
`accelerate_lab.api.protocols`), set the class attributes, and add the name to `BUILTIN` in
`_registry.py` (a third-party package calls `register_backend` instead).

The sample wire protocol (served by `accelerate_lab.api.testing.sample_routes()`):

- `POST /chat` `{"model", "messages", "stream"}` -> `{"model", "text", "usage": {"prompt_tokens",
  "completion_tokens"}}`; with `stream`, NDJSON lines `{"text"}`, then `{"done": true, "usage": ...}`
- `POST /embed` `{"model", "texts"}` -> `{"embeddings": [[float, ...], ...]}`
- `GET /models` -> `{"models": ["sample-echo", ...]}`
- `GET /health` -> `{"status": "ok"}`

>>> from accelerate_lab.api import create_api_backend
>>> from accelerate_lab.api.testing import LocalServer, sample_routes
>>> with LocalServer(sample_routes()) as server:
...     backend = create_api_backend("sample", metadata={"sample_api_url": server.url})
...     backend.chat(None, "hello").text
'echo: hello'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._decode import Frame, expect_dict, expect_list
from accelerate_lab.api._errors import ProviderError
from accelerate_lab.api._layer import StreamDecoder
from accelerate_lab.api._types import ChatResponse, HttpRequest, HttpResponse, Message, StreamChunk, Usage

__all__ = ["Backend", "SampleBackend"]


# --- 1. protocol adapter (pure) ------------------------------------------------------------------
def chat_request(
    model: str, messages: list[Message], opts: Mapping[str, object], stream: bool
) -> HttpRequest:
    body = {"model": model, "messages": list(messages), "stream": stream, **opts}
    return HttpRequest("POST", "/chat", json=body, stream="ndjson" if stream else None)


def _usage(data: object) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(int(data.get("prompt_tokens", 0)), int(data.get("completion_tokens", 0)))


def parse_chat(response: HttpResponse) -> ChatResponse:
    data = expect_dict(response.json(), "a sample chat answer")
    return ChatResponse(
        str(data["text"]), str(data.get("model", "")), _usage(data.get("usage")), "stop", raw=data
    )


@dataclass
class ChatStreamDecoder:
    """One NDJSON line per frame; `{"done": true}` ends the stream, `{"error": ...}` fails it."""

    done: bool = False

    def feed(self, frame: Frame) -> list[StreamChunk]:
        data = frame.json_object("a sample stream line")
        if "error" in data:
            raise ProviderError(f"error in stream: {data['error']}", status=500, body=frame.data)
        if data.get("done"):
            self.done = True
            return [StreamChunk(done=True, finish_reason="stop", usage=_usage(data.get("usage")), raw=data)]
        return [StreamChunk(text=str(data["text"]), raw=data)]


def embed_request(model: str, texts: list[str], opts: Mapping[str, object]) -> HttpRequest:
    return HttpRequest("POST", "/embed", json={"model": model, "texts": texts, **opts})


def parse_embed(response: HttpResponse) -> list[list[float]]:
    data = expect_dict(response.json(), "a sample embed answer")
    return [[float(x) for x in row] for row in expect_list(data["embeddings"], "embeddings")]


def parse_models(response: HttpResponse) -> list[str]:
    return [str(m) for m in expect_list(expect_dict(response.json(), "a model list")["models"], "models")]


# --- 2. backend class ----------------------------------------------------------------------------
class SampleBackend(ApiBackend):
    name = "sample"
    default_url = "http://127.0.0.1:8765"
    default_model = "sample-echo"
    health_path = "/health"

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        return chat_request(model, messages, opts, stream)

    def _parse_chat(self, response: HttpResponse) -> ChatResponse:
        return parse_chat(response)

    def _stream_decoder(self) -> StreamDecoder[StreamChunk]:
        return ChatStreamDecoder()

    def _embed_request(self, model: str, texts: list[str], opts: dict[str, object]) -> HttpRequest:
        return embed_request(model, texts, opts)

    def _parse_embed(self, response: HttpResponse) -> list[list[float]]:
        return parse_embed(response)

    def _models_request(self) -> HttpRequest:
        return HttpRequest("GET", "/models")

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return parse_models(response)


Backend = SampleBackend
