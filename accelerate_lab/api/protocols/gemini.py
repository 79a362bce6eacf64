"""The Gemini REST wire format (v1beta): generateContent, streamGenerateContent (`alt=sse`),
embedContent / batchEmbedContents, inline image parts, function declarations, and the model list.

>>> req = generate_request("gemini-2.0-flash", [{"role": "user", "content": "hi"}], {"temperature": 0}, True)
>>> req.path, dict(req.params or {})
('/models/gemini-2.0-flash:streamGenerateContent', {'alt': 'sse'})
>>> req.json["contents"], req.json["generationConfig"]
([{'role': 'user', 'parts': [{'text': 'hi'}]}], {'temperature': 0})
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
    "GenerateStreamDecoder",
    "embed_request",
    "generate_request",
    "parse_embed",
    "parse_generate",
    "parse_models",
]

_CONFIG = {
    "temperature": "temperature",
    "max_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "stop": "stopSequences",
    "candidate_count": "candidateCount",
    "seed": "seed",
    "response_mime_type": "responseMimeType",
}


def model_path(model: str) -> str:
    return "/models/" + model.removeprefix("models/")


def _parts(content: object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for part in iter_parts(content):
        if isinstance(part, InlineImage):
            out.append({"inlineData": {"mimeType": part.mime_type, "data": part.data_b64}})
        else:
            out.append({"text": part})
    return out


def _content(msg: Message) -> dict[str, object]:
    role = msg.get("role")
    if role == "tool":
        result = msg.get("content", "")
        response = (
            json.loads(result) if isinstance(result, str) and result.startswith("{") else {"result": result}
        )
        return {
            "role": "user",
            "parts": [{"functionResponse": {"name": msg.get("name", ""), "response": response}}],
        }
    parts = _parts(msg.get("content", ""))
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            args = call["function"].get("arguments") or "{}"
            parts.append(
                {
                    "functionCall": {
                        "name": call["function"]["name"],
                        "args": json.loads(args) if isinstance(args, str) else args,
                    }
                }
            )
    return {
        "role": "model" if role == "assistant" else "user",
        "parts": [p for p in parts if p != {"text": ""}],
    }


def generate_request(
    model: str, messages: list[Message], opts: Mapping[str, object], stream: bool
) -> HttpRequest:
    opts = dict(opts)
    system = [str(m.get("content", "")) for m in messages if m.get("role") == "system"]
    if "system" in opts:
        system.append(str(opts.pop("system")))
    body: dict[str, object] = {"contents": [_content(m) for m in messages if m.get("role") != "system"]}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config = {_CONFIG[k]: opts.pop(k) for k in list(opts) if k in _CONFIG}
    if config:
        body["generationConfig"] = config
    tools = opts.pop("tools", None)
    if isinstance(tools, list):
        decls = [t.get("function", t) for t in tools]
        body["tools"] = [
            {
                "functionDeclarations": [
                    {k: d[k] for k in ("name", "description", "parameters") if k in d} for d in decls
                ]
            }
        ]
    body.update(opts)
    if stream:
        return HttpRequest(
            "POST",
            model_path(model) + ":streamGenerateContent",
            json=body,
            params={"alt": "sse"},
            stream="sse",
        )
    return HttpRequest("POST", model_path(model) + ":generateContent", json=body)


def _usage(data: Mapping[str, Any]) -> Usage | None:
    meta = data.get("usageMetadata")
    if not isinstance(meta, dict):
        return None
    return Usage(int(meta.get("promptTokenCount", 0)), int(meta.get("candidatesTokenCount", 0)))


def _candidate(data: Mapping[str, Any]) -> tuple[str, tuple[ToolCall, ...], str | None]:
    if "error" in data:
        err = data["error"]
        raise ProviderError(
            f"gemini error: {err.get('message')}",
            status=int(err.get("code", 500)),
            body=json.dumps(data)[:2000],
        )
    candidates = data.get("candidates") or []
    if not candidates:
        return "", (), None
    cand = candidates[0]
    parts = (cand.get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    calls = tuple(
        ToolCall(p["functionCall"]["name"], p["functionCall"]["name"], p["functionCall"].get("args", {}))
        for p in parts
        if "functionCall" in p
    )
    return text, calls, cand.get("finishReason")


def parse_generate(response: HttpResponse) -> ChatResponse:
    data = expect_dict(response.json(), "a GenerateContentResponse")
    text, calls, finish = _candidate(data)
    return ChatResponse(text, str(data.get("modelVersion", "")), _usage(data), finish, calls, raw=data)


@dataclass
class GenerateStreamDecoder:
    """Each SSE event is a whole GenerateContentResponse; the one with a `finishReason` is the last."""

    done: bool = False

    def feed(self, frame: Frame) -> list[StreamChunk]:
        data = frame.json_object("a stream event")
        text, calls, finish = _candidate(data)
        out = [StreamChunk(text=text, raw=data)] if text else []
        if finish:
            self.done = True
            out.append(
                StreamChunk(done=True, finish_reason=finish, usage=_usage(data), tool_calls=calls, raw=data)
            )
        return out


def embed_request(model: str, texts: list[str], opts: Mapping[str, object]) -> HttpRequest:
    if len(texts) == 1:
        return HttpRequest(
            "POST",
            model_path(model) + ":embedContent",
            json={"content": {"parts": [{"text": texts[0]}]}, **opts},
        )
    name = "models/" + model.removeprefix("models/")
    requests = [{"model": name, "content": {"parts": [{"text": t}]}, **opts} for t in texts]
    return HttpRequest("POST", model_path(model) + ":batchEmbedContents", json={"requests": requests})


def parse_embed(response: HttpResponse) -> list[list[float]]:
    data = expect_dict(response.json(), "an embedding answer")
    items = [data["embedding"]] if "embedding" in data else expect_list(data["embeddings"], "embeddings")
    return [[float(x) for x in item["values"]] for item in items]


def parse_models(response: HttpResponse) -> list[str]:
    data = expect_dict(response.json(), "a model list")
    return [str(m["name"]).removeprefix("models/") for m in expect_list(data.get("models", []), "models")]
