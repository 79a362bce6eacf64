"""The OpenAI REST wire format (also spoken by Groq, vLLM, TGI's Messages API, OPEA, llama-server).

Chat completions (with tools and SSE streaming ending in `data: [DONE]`), embeddings, images,
audio transcription and speech, moderation, and the model list.

>>> req = chat_request("gpt-4o-mini", [{"role": "user", "content": "hi"}], {}, stream=True)
>>> req.path, req.json["stream"], req.stream
('/chat/completions', True, 'sse')
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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

__all__ = [
    "ChatStreamDecoder",
    "GeneratedImage",
    "Moderation",
    "chat_request",
    "embeddings_request",
    "images_request",
    "models_request",
    "moderation_request",
    "parse_chat",
    "parse_embeddings",
    "parse_images",
    "parse_models",
    "parse_moderation",
    "parse_transcription",
    "speech_request",
    "transcription_request",
]


def chat_request(
    model: str,
    messages: list[Message],
    opts: Mapping[str, object],
    stream: bool,
    *,
    include_usage: bool = True,
    path: str = "/chat/completions",
) -> HttpRequest:
    body: dict[str, object] = {"model": model, "messages": list(messages), **opts}
    system = body.pop("system", None)
    if system is not None:
        body["messages"] = [{"role": "system", "content": system}, *messages]
    if stream:
        body["stream"] = True
        if include_usage:
            body.setdefault("stream_options", {"include_usage": True})
    return HttpRequest("POST", path, json=body, stream="sse" if stream else None)


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))


def _tool_call(item: Mapping[str, Any]) -> ToolCall:
    fn = item["function"]
    args = fn.get("arguments") or "{}"
    parsed = json.loads(args) if isinstance(args, str) else args
    return ToolCall(str(item.get("id", "")), str(fn["name"]), parsed)


def parse_chat(response: HttpResponse) -> ChatResponse:
    data = expect_dict(response.json(), "a chat completion")
    choice = expect_list(data["choices"], "choices")[0]
    message = choice["message"]
    calls = message.get("tool_calls")
    return ChatResponse(
        text=message.get("content") or "",
        model=str(data.get("model", "")),
        usage=_usage(data.get("usage")),
        finish_reason=choice.get("finish_reason"),
        tool_calls=tuple([_tool_call(t) for t in calls]) if calls else (),
        raw=data,
    )


def stream_error(data: Mapping[str, Any]) -> ProviderError:
    err = data["error"]
    message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and code >= 400 else 500
    return ProviderError(f"error event in stream: {message}", status=status, body=json.dumps(data)[:2000])


@dataclass
class ChatStreamDecoder:
    """Turns `chat.completion.chunk` events into `StreamChunk`s; tool-call fragments are assembled and
    delivered on the final chunk, with the usage when the server sent it."""

    done: bool = False
    _finish: str | None = None
    _usage: Usage | None = None
    _tools: dict[int, dict[str, str]] = field(default_factory=dict)

    def feed(self, frame: Frame) -> list[StreamChunk]:
        text = frame.data
        # Chunks are JSON objects; only the final "[DONE]" is not (checked without a strip per token).
        if not text.endswith("}") and text.strip() == "[DONE]":
            self.done = True
            calls = tuple(
                ToolCall(t["id"], t["name"], json.loads(t["arguments"] or "{}"))
                for _, t in sorted(self._tools.items())
            )
            return [StreamChunk(done=True, finish_reason=self._finish, usage=self._usage, tool_calls=calls)]
        data = frame.json_object("a stream chunk")
        if "error" in data:
            raise stream_error(data)
        if usage := data.get("usage"):
            self._usage = _usage(usage)
        out = []
        for choice in data.get("choices") or ():  # each value looked up once: this runs per token
            delta = choice.get("delta") or {}
            if finish := choice.get("finish_reason"):
                self._finish = finish
            if "tool_calls" in delta:
                self._add_tool_calls(delta["tool_calls"] or ())
            if content := delta.get("content"):  # positional: a class call with keywords builds a dict
                out.append(StreamChunk(content, False, finish, None, (), data))
        return out

    def _add_tool_calls(self, calls: Iterable[Mapping[str, Any]]) -> None:
        for call in calls:
            slot = self._tools.setdefault(int(call.get("index", 0)), {"id": "", "name": "", "arguments": ""})
            slot["id"] = call.get("id") or slot["id"]
            fn = call.get("function") or {}
            slot["name"] += fn.get("name") or ""
            slot["arguments"] += fn.get("arguments") or ""


def embeddings_request(model: str, texts: list[str], opts: Mapping[str, object]) -> HttpRequest:
    return HttpRequest("POST", "/embeddings", json={"model": model, "input": texts, **opts})


def parse_embeddings(response: HttpResponse) -> list[list[float]]:
    data = expect_dict(response.json(), "an embeddings answer")
    items = sorted(expect_list(data["data"], "data"), key=lambda d: int(d.get("index", 0)))
    out = []
    for item in items:
        emb = item["embedding"]
        if isinstance(emb, str):  # encoding_format="base64": little-endian float32
            import numpy as np

            emb = np.frombuffer(base64.b64decode(emb), dtype="<f4").tolist()
        out.append([float(x) for x in emb])
    return out


def models_request() -> HttpRequest:
    return HttpRequest("GET", "/models")


def parse_models(response: HttpResponse) -> list[str]:
    data = expect_dict(response.json(), "a model list")
    return [str(m["id"]) for m in expect_list(data["data"], "data")]


@dataclass(frozen=True)
class GeneratedImage:
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None

    def bytes(self) -> bytes:
        """The image file's bytes (needs `response_format="b64_json"`)."""
        if self.b64_json is None:
            raise ValueError(f"image was returned as a URL ({self.url}); ask for response_format='b64_json'")
        return base64.b64decode(self.b64_json)


def images_request(model: str, prompt: str, opts: Mapping[str, object]) -> HttpRequest:
    return HttpRequest("POST", "/images/generations", json={"model": model, "prompt": prompt, **opts})


def parse_images(response: HttpResponse) -> list[GeneratedImage]:
    data = expect_dict(response.json(), "an images answer")
    return [
        GeneratedImage(d.get("url"), d.get("b64_json"), d.get("revised_prompt"))
        for d in expect_list(data["data"], "data")
    ]


def transcription_request(model: str, audio: bytes, filename: str, opts: Mapping[str, object]) -> HttpRequest:
    fields = {"model": model, **{k: str(v) for k, v in opts.items()}}
    mime = "audio/wav" if filename.endswith(".wav") else "application/octet-stream"
    return HttpRequest("POST", "/audio/transcriptions", data=fields, files={"file": (filename, audio, mime)})


def parse_transcription(response: HttpResponse) -> str:
    if response.headers.get("content-type", "").startswith("application/json"):
        return str(expect_dict(response.json(), "a transcription")["text"])
    return response.text  # response_format="text" / "srt" / "vtt"


def speech_request(model: str, text: str, voice: str, opts: Mapping[str, object]) -> HttpRequest:
    return HttpRequest("POST", "/audio/speech", json={"model": model, "input": text, "voice": voice, **opts})


@dataclass(frozen=True)
class Moderation:
    flagged: bool
    categories: Mapping[str, bool]
    category_scores: Mapping[str, float]


def moderation_request(model: str, texts: list[str]) -> HttpRequest:
    return HttpRequest("POST", "/moderations", json={"model": model, "input": texts})


def parse_moderation(response: HttpResponse) -> list[Moderation]:
    data = expect_dict(response.json(), "a moderation answer")
    return [
        Moderation(bool(r["flagged"]), dict(r.get("categories", {})), dict(r.get("category_scores", {})))
        for r in expect_list(data["results"], "results")
    ]
