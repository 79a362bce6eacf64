"""The Ollama REST wire format: /api/chat and /api/generate (NDJSON streams), /api/embed,
/api/tags, and /api/pull with progress lines.

>>> req = chat_request("llama3.2", [{"role": "user", "content": "hi"}], {"temperature": 0.1}, stream=True)
>>> req.path, req.stream, req.json["options"], req.json["stream"]
('/api/chat', 'ndjson', {'temperature': 0.1}, True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accelerate_lab.api._decode import Frame, expect_dict, expect_list
from accelerate_lab.api._errors import ProviderError
from accelerate_lab.api._types import (
    ChatResponse,
    HttpRequest,
    HttpResponse,
    Message,
    StreamChunk,
    ToolCall,
    Usage,
)
from accelerate_lab.api.protocols._content import InlineImage, iter_parts

__all__ = [
    "ChatStreamDecoder",
    "PullProgress",
    "PullStreamDecoder",
    "chat_request",
    "embed_request",
    "generate_request",
    "parse_chat",
    "parse_embed",
    "parse_generate",
    "parse_tags",
    "pull_request",
]

# Model options (sent under "options"); everything else (format, keep_alive, tools, think) goes top-level.
_OPTIONS = {
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "stop",
    "num_ctx",
    "num_predict",
    "repeat_penalty",
    "min_p",
    "max_tokens",
}


def _split(opts: Mapping[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    options = {("num_predict" if k == "max_tokens" else k): v for k, v in opts.items() if k in _OPTIONS}
    rest = {k: v for k, v in opts.items() if k not in _OPTIONS}
    return options, rest


def _message(msg: Message) -> dict[str, object]:
    text, images = [], []
    for part in iter_parts(msg.get("content", "")):
        if isinstance(part, InlineImage):
            images.append(part.data_b64)
        else:
            text.append(part)
    out: dict[str, object] = {"role": msg.get("role"), "content": "".join(text)}
    if images:
        out["images"] = images
    if msg.get("tool_calls"):
        out["tool_calls"] = msg["tool_calls"]
    return out


def chat_request(
    model: str, messages: list[Message], opts: Mapping[str, object], stream: bool
) -> HttpRequest:
    options, rest = _split(opts)
    system = rest.pop("system", None)
    msgs = [_message(m) for m in messages]
    if system is not None:
        msgs.insert(0, {"role": "system", "content": str(system)})
    body: dict[str, object] = {"model": model, "messages": msgs, "stream": stream, **rest}
    if options:
        body["options"] = options
    return HttpRequest("POST", "/api/chat", json=body, stream="ndjson" if stream else None)


def _usage(data: Mapping[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    return Usage(int(data.get("prompt_eval_count", 0)), int(data.get("eval_count", 0)))


def _error(data: Mapping[str, Any]) -> None:
    if "error" in data:
        raise ProviderError(f"ollama: {data['error']}", status=500, body=json.dumps(data)[:2000])


def _calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(
            str(c.get("id", c["function"]["name"])), c["function"]["name"], c["function"].get("arguments", {})
        )
        for c in message.get("tool_calls") or ()
    )


def parse_chat(response: HttpResponse) -> ChatResponse:
    data = expect_dict(response.json(), "a chat answer")
    _error(data)
    message = data["message"]
    return ChatResponse(
        message.get("content", ""),
        str(data.get("model", "")),
        _usage(data),
        data.get("done_reason"),
        _calls(message),
        raw=data,
    )


@dataclass
class ChatStreamDecoder:
    """One JSON object per line; `"done": true` is the last (with token counts)."""

    done: bool = False
    field: str = "message"  # "response" for /api/generate

    def feed(self, frame: Frame) -> list[StreamChunk]:
        data = frame.json_object("a stream line")
        _error(data)
        if self.field == "message":
            message = data.get("message") or {}
            text, calls = message.get("content", ""), _calls(message)
        else:
            text, calls = data.get("response", ""), ()
        out = [StreamChunk(text=text, raw=data)] if text else []
        if data.get("done"):
            self.done = True
            out.append(
                StreamChunk(
                    done=True,
                    finish_reason=data.get("done_reason"),
                    usage=_usage(data),
                    tool_calls=calls,
                    raw=data,
                )
            )
        elif calls:
            out.append(StreamChunk(tool_calls=calls, raw=data))
        return out


def generate_request(model: str, prompt: str, opts: Mapping[str, object], stream: bool) -> HttpRequest:
    options, rest = _split(opts)
    body: dict[str, object] = {"model": model, "prompt": prompt, "stream": stream, **rest}
    if options:
        body["options"] = options
    return HttpRequest("POST", "/api/generate", json=body, stream="ndjson" if stream else None)


def parse_generate(response: HttpResponse) -> ChatResponse:
    data = expect_dict(response.json(), "a generate answer")
    _error(data)
    return ChatResponse(
        str(data["response"]), str(data.get("model", "")), _usage(data), data.get("done_reason"), raw=data
    )


def embed_request(model: str, texts: list[str], opts: Mapping[str, object]) -> HttpRequest:
    return HttpRequest("POST", "/api/embed", json={"model": model, "input": texts, **opts})


def parse_embed(response: HttpResponse) -> list[list[float]]:
    data = expect_dict(response.json(), "an embed answer")
    return [[float(x) for x in row] for row in expect_list(data["embeddings"], "embeddings")]


def parse_tags(response: HttpResponse) -> list[str]:
    data = expect_dict(response.json(), "a tag list")
    return [str(m["name"]) for m in expect_list(data["models"], "models")]


@dataclass(frozen=True)
class PullProgress:
    status: str
    digest: str = ""
    total: int = 0
    completed: int = 0

    @property
    def fraction(self) -> float | None:
        return self.completed / self.total if self.total else None


def pull_request(model: str, insecure: bool = False) -> HttpRequest:
    return HttpRequest(
        "POST", "/api/pull", json={"model": model, "insecure": insecure, "stream": True}, stream="ndjson"
    )


@dataclass
class PullStreamDecoder:
    """Progress lines until `{"status": "success"}`; `{"error": ...}` fails the pull."""

    done: bool = False

    def feed(self, frame: Frame) -> list[PullProgress]:
        data = frame.json_object("a pull progress line")
        _error(data)
        status = str(data["status"])
        self.done = status == "success"
        return [
            PullProgress(
                status, str(data.get("digest", "")), int(data.get("total", 0)), int(data.get("completed", 0))
            )
        ]
