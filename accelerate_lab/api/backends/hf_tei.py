"""Hugging Face Text Embeddings Inference: /embed, /rerank, /info.

The token (`hf_tei_api_key`, `HF_TOKEN`) is needed only by endpoints that ask for one.

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("hf_tei").pool.endpoints[0].url
'http://localhost:8080'
"""

from __future__ import annotations

from typing import Any

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._types import HttpRequest, HttpResponse, Priority
from accelerate_lab.api.protocols import huggingface as proto
from accelerate_lab.api.protocols.huggingface import Rank

__all__ = ["Backend", "HfTeiBackend", "Rank"]

P = Priority.NORMAL
INFO = HttpRequest("GET", "/info")


def _model_id(response: HttpResponse) -> list[str]:
    return [str(proto.parse_info(response)["model_id"])]


class HfTeiBackend(ApiBackend):
    name = "hf_tei"
    default_url = "http://localhost:8080"
    default_model = "served"  # TEI serves one model; the name is informational
    key_env = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    health_path = "/health"

    def _embed_request(self, model: str, texts: list[str], opts: dict[str, object]) -> HttpRequest:
        return proto.embed_request(texts, opts)

    def _parse_embed(self, response: HttpResponse) -> list[list[float]]:
        return proto.parse_embed(response)

    def _models_request(self) -> HttpRequest:
        return INFO

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return _model_id(response)

    def rerank(
        self,
        query: str,
        texts: list[str],
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> list[Rank]:
        """Scores of `texts` against `query`, best first (`opts`: return_text, raw_scores, truncate)."""
        return self._call(proto.rerank_request(query, texts, opts), proto.parse_rerank, priority, timeout)

    async def arerank(
        self,
        query: str,
        texts: list[str],
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> list[Rank]:
        return await self._acall(
            proto.rerank_request(query, texts, opts), proto.parse_rerank, priority, timeout
        )

    def info(self, *, priority: Priority = P, timeout: float | None = None) -> dict[str, Any]:
        return self._call(INFO, proto.parse_info, priority, timeout)

    async def ainfo(self, *, priority: Priority = P, timeout: float | None = None) -> dict[str, Any]:
        return await self._acall(INFO, proto.parse_info, priority, timeout)


Backend = HfTeiBackend
