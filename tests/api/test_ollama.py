"""Ollama: /api/chat and /api/generate NDJSON streams, /api/embed, /api/tags, pull with progress."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from accelerate_lab.api import StreamInterrupted, Usage
from accelerate_lab.api.backends.ollama import OllamaBackend, PullProgress
from accelerate_lab.api.testing import Reply

from . import recordings as rec
from .conftest import Serve, backend_for
from .streams import offsets, split_reply


def ollama(serve: Serve, routes: dict[str, object]) -> tuple[OllamaBackend, list[object]]:
    server = serve(routes)  # type: ignore[arg-type]
    b = backend_for("ollama", server.url)
    assert isinstance(b, OllamaBackend)
    return b, server.requests  # type: ignore[return-value]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=offsets)
def test_chat_stream_survives_any_byte_split(serve: Serve, cuts: list[int]) -> None:
    b, requests = ollama(
        serve, {"POST /api/chat": lambda r: split_reply(Reply.ndjson(rec.OLLAMA_CHAT_STREAM), cuts)}
    )
    chunks = list(
        b.stream_chat("llama3.2", "why is the sky blue?", temperature=0, max_tokens=10, keep_alive="5m")
    )
    assert "".join(c.text for c in chunks) == "The sky is blue"
    assert chunks[-1].done and chunks[-1].usage == Usage(26, 282) and chunks[-1].finish_reason == "stop"
    body = requests[-1].json()  # type: ignore[attr-defined]
    assert body["options"] == {"temperature": 0, "num_predict": 10} and body["keep_alive"] == "5m"


async def test_chat_generate_embed_tags(serve: Serve) -> None:
    b, requests = ollama(
        serve,
        {
            "POST /api/chat": lambda r: Reply.json(rec.OLLAMA_CHAT),
            "POST /api/generate": lambda r: Reply.ndjson(rec.OLLAMA_GENERATE_STREAM),
            "POST /api/embed": lambda r: Reply.json(rec.OLLAMA_EMBED),
            "GET /api/tags": lambda r: Reply.json(rec.OLLAMA_TAGS),
        },
    )
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}
    r = await b.achat(None, [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}])
    assert r.text == "Hello! How are you today?" and r.usage == Usage(26, 298)
    assert requests[0].json()["messages"] == [{"role": "user", "content": "hi", "images": ["iVBORw=="]}]  # type: ignore[attr-defined]
    assert [c.text for c in b.stream_generate(None, "The")] == ["The", ""]
    assert len(await b.aembed(None, ["a", "b"])) == 2
    assert b.list_models() == ["llama3.2:latest"]


async def test_pull_reports_progress(serve: Serve) -> None:
    b, _ = ollama(serve, {"POST /api/pull": lambda r: Reply.ndjson(rec.OLLAMA_PULL, split=[5, 50, 120])})
    seen: list[PullProgress] = []
    last = b.pull("llama3.2", progress=seen.append)
    assert last.status == "success" and len(seen) == 6
    assert seen[2].fraction == 1.0 and seen[1].fraction is not None and seen[1].fraction < 0.01
    assert (await b.apull("llama3.2")).status == "success"


def test_error_line_in_pull_is_typed(serve: Serve) -> None:
    b, _ = ollama(
        serve,
        {
            "POST /api/pull": lambda r: Reply.ndjson(
                [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
            )
        },
    )
    with pytest.raises(StreamInterrupted, match="file does not exist"):
        b.pull("nope")
