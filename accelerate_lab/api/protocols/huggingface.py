"""Hugging Face serving wire formats: Text Embeddings Inference (/embed, /rerank, /info) and
Text Generation Inference (/generate, /generate_stream SSE, /info; its Messages API is OpenAI's).

>>> generate_request("Hello", {"max_new_tokens": 8}, stream=True).path
'/generate_stream'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from accelerate_lab.api._decode import Frame, expect_dict, expect_list
from accelerate_lab.api._errors import ProviderError
from accelerate_lab.api._types import HttpRequest, HttpResponse, StreamChunk, Usage

__all__ = [
    "GenerateStreamDecoder",
    "Generation",
    "Rank",
    "embed_request",
    "generate_request",
    "parse_embed",
    "parse_generation",
    "parse_info",
    "parse_rerank",
    "rerank_request",
]


# --- Text Embeddings Inference -------------------------------------------------------------------
def embed_request(texts: list[str], opts: Mapping[str, object]) -> HttpRequest:
    return HttpRequest("POST", "/embed", json={"inputs": texts, **opts})


def parse_embed(response: HttpResponse) -> list[list[float]]:
    return [[float(x) for x in row] for row in expect_list(response.json(), "embeddings")]


@dataclass(frozen=True)
class Rank:
    index: int
    score: float
    text: str | None = None


def rerank_request(query: str, texts: list[str], opts: Mapping[str, object]) -> HttpRequest:
    return HttpRequest("POST", "/rerank", json={"query": query, "texts": texts, **opts})


def parse_rerank(response: HttpResponse) -> list[Rank]:
    """Best first, as TEI returns them."""
    return [
        Rank(int(r["index"]), float(r["score"]), r.get("text")) for r in expect_list(response.json(), "ranks")
    ]


def parse_info(response: HttpResponse) -> dict[str, Any]:
    return expect_dict(response.json(), "an /info answer")


# --- Text Generation Inference -------------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None
    raw: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)


def generate_request(prompt: str, parameters: Mapping[str, object], stream: bool) -> HttpRequest:
    params = {"details": True, **parameters} if not stream else dict(parameters)
    return HttpRequest(
        "POST",
        "/generate_stream" if stream else "/generate",
        json={"inputs": prompt, "parameters": params},
        stream="sse" if stream else None,
    )


def parse_generation(response: HttpResponse) -> Generation:
    data = response.json()
    if isinstance(data, list):  # some TGI versions answer a one-element list
        data = data[0]
    data = expect_dict(data, "a generation")
    details = data.get("details") or {}
    return Generation(
        str(data["generated_text"]), details.get("finish_reason"), details.get("generated_tokens"), raw=data
    )


@dataclass
class GenerateStreamDecoder:
    """`data:{"token": {...}, "generated_text": null, ...}` per token; the last has `generated_text`."""

    done: bool = False

    def feed(self, frame: Frame) -> list[StreamChunk]:
        data = frame.json_object("a stream event")
        if "error" in data:
            raise ProviderError(f"tgi: {data['error']}", status=500, body=frame.data[:2000])
        token = data.get("token") or {}
        out = (
            []
            if token.get("special") or not token.get("text")
            else [StreamChunk(text=token["text"], raw=data)]
        )
        if data.get("generated_text") is not None:
            self.done = True
            details = data.get("details") or {}
            usage = Usage(0, int(details["generated_tokens"])) if "generated_tokens" in details else None
            out.append(
                StreamChunk(done=True, finish_reason=details.get("finish_reason"), usage=usage, raw=data)
            )
        return out
