"""The Anthropic Messages API wire format: `POST /v1/messages`, content blocks, tool use, SSE events.

Messages are given in the OpenAI form; system messages move to the top-level `system`, images become
base64 `image` blocks, tool results become `tool_result` blocks, and OpenAI-style function tools
become `input_schema` tools.

>>> req = messages_request("claude-3-5-haiku-latest",
...     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], {}, stream=False)
>>> req.json["system"], req.json["messages"], req.json["max_tokens"]
('Be brief.', [{'role': 'user', 'content': 'hi'}], 1024)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
from accelerate_lab.api.protocols._content import InlineImage, iter_parts

__all__ = ["MessagesStreamDecoder", "messages_request", "models_request", "parse_message", "parse_models"]

API_VERSION = "2023-06-01"
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _blocks(content: object) -> str | list[dict[str, object]]:
    if isinstance(content, str):
        return content
    blocks: list[dict[str, object]] = []
    for part in iter_parts(content):
        if isinstance(part, InlineImage):
            blocks.append(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": part.mime_type, "data": part.data_b64},
                }
            )
        else:
            blocks.append({"type": "text", "text": part})
    return blocks


def _message(msg: Message) -> dict[str, object]:
    role = msg.get("role")
    if role == "tool":
        return {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": msg.get("tool_call_id"),
                    "content": str(msg.get("content", "")),
                }
            ],
        }
    calls = msg.get("tool_calls")
    if role == "assistant" and isinstance(calls, list) and calls:
        blocks = [b for b in [{"type": "text", "text": msg.get("content")}] if b["text"]]
        for call in calls:
            fn = call["function"]
            args = fn.get("arguments") or "{}"
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id"),
                    "name": fn["name"],
                    "input": json.loads(args) if isinstance(args, str) else args,
                }
            )
        return {"role": "assistant", "content": blocks}
    return {"role": role, "content": _blocks(msg.get("content", ""))}


def _tool(tool: Mapping[str, Any]) -> dict[str, object]:
    if "input_schema" in tool:
        return dict(tool)
    fn = tool.get("function", tool)
    return {
        "name": fn["name"],
        "description": fn.get("description", ""),
        "input_schema": fn.get("parameters", {"type": "object", "properties": {}}),
    }


def messages_request(
    model: str, messages: list[Message], opts: Mapping[str, object], stream: bool
) -> HttpRequest:
    system = [str(m.get("content", "")) for m in messages if m.get("role") == "system"]
    body: dict[str, object] = {
        "model": model,
        "max_tokens": 1024,
        "messages": [_message(m) for m in messages if m.get("role") != "system"],
        **opts,
    }
    if system and "system" not in opts:
        body["system"] = "\n\n".join(system)
    tools = opts.get("tools")
    if isinstance(tools, list):
        body["tools"] = [_tool(t) for t in tools]
    if stream:
        body["stream"] = True
    return HttpRequest("POST", "/v1/messages", json=body, stream="sse" if stream else None)


_INPUT_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _input_tokens(usage: Mapping[str, Any]) -> int:
    """All the prompt's tokens: `input_tokens` counts only those neither read from nor written to the
    prompt cache, which the other two fields count (as OpenAI's `prompt_tokens` includes cached ones)."""
    return sum(int(usage.get(k) or 0) for k in _INPUT_FIELDS)


def parse_message(response: HttpResponse) -> ChatResponse:
    data = expect_dict(response.json(), "a message")
    blocks = expect_list(data["content"], "content")
    usage = data.get("usage") or {}
    return ChatResponse(
        text="".join(b.get("text", "") for b in blocks if b.get("type") == "text"),
        model=str(data.get("model", "")),
        usage=Usage(_input_tokens(usage), int(usage.get("output_tokens", 0))),
        finish_reason=data.get("stop_reason"),
        tool_calls=tuple(
            ToolCall(b["id"], b["name"], b.get("input") or {}) for b in blocks if b.get("type") == "tool_use"
        ),
        raw=data,
    )


@dataclass
class MessagesStreamDecoder:
    """Handles message_start, content_block_start/delta/stop, message_delta, message_stop, ping and error."""

    done: bool = False
    _model: str = ""
    _input_tokens: int = 0
    _output_tokens: int = 0
    _stop: str | None = None
    _tools: dict[int, dict[str, str]] = field(default_factory=dict)

    def feed(self, frame: Frame) -> list[StreamChunk]:
        data = frame.json_object("a stream event")
        kind = data.get("type", frame.event)
        if kind == "message_start":
            message = data["message"]
            self._model = message.get("model", "")
            self._input_tokens = _input_tokens(message.get("usage") or {})
        elif kind == "content_block_start":
            block = data["content_block"]
            if block.get("type") == "tool_use":
                self._tools[int(data["index"])] = {"id": block["id"], "name": block["name"], "json": ""}
        elif kind == "content_block_delta":
            delta = data["delta"]
            if delta.get("type") == "text_delta":
                return [StreamChunk(text=delta["text"], raw=data)]
            if delta.get("type") == "input_json_delta":
                self._tools[int(data["index"])]["json"] += delta.get("partial_json", "")
        elif kind == "message_delta":
            self._stop = (data.get("delta") or {}).get("stop_reason") or self._stop
            self._output_tokens = int((data.get("usage") or {}).get("output_tokens", self._output_tokens))
        elif kind == "message_stop":
            self.done = True
            calls = tuple(
                ToolCall(t["id"], t["name"], json.loads(t["json"] or "{}"))
                for _, t in sorted(self._tools.items())
            )
            return [
                StreamChunk(
                    done=True,
                    finish_reason=self._stop,
                    usage=Usage(self._input_tokens, self._output_tokens),
                    tool_calls=calls,
                    raw=data,
                )
            ]
        elif kind == "error":
            err = data.get("error") or {}
            status = ERROR_STATUS.get(str(err.get("type")), 500)
            raise ProviderError(
                f"error event in stream: {err.get('type')}: {err.get('message')}",
                status=status,
                body=frame.data[:2000],
            )
        return []


def models_request() -> HttpRequest:
    return HttpRequest("GET", "/v1/models")


def parse_models(response: HttpResponse) -> list[str]:
    data = expect_dict(response.json(), "a model list")
    return [str(m["id"]) for m in expect_list(data["data"], "data")]
