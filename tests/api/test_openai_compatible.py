"""OpenAI-compatible backends: groq, opea, and vLLM with LoRA adapters across replicas."""

from __future__ import annotations

import pytest

from accelerate_lab.api.backends.vllm import LoraAdapter, VllmBackend
from accelerate_lab.api.testing import Reply, Request

from . import recordings as rec
from .conftest import Serve, backend_for


@pytest.mark.parametrize(("name", "prefix"), [("groq", "/openai/v1"), ("opea", "/v1"), ("vllm", "/v1")])
def test_chat_and_stream(serve: Serve, name: str, prefix: str) -> None:
    server = serve(
        {
            f"POST {prefix}/chat/completions": lambda r: (
                Reply.sse(rec.OPENAI_STREAM) if r.json().get("stream") else Reply.json(rec.OPENAI_CHAT)
            )
        }
    )
    b = backend_for(name, server.url + prefix)
    assert b.chat("m", "hi").text == "Hello! How can I help?"
    assert "".join(c.text for c in b.stream_chat("m", "hi")) == "Hello wörld!"


async def test_vllm_lora_load_list_use_unload_on_every_replica(serve: Serve) -> None:
    def load(req: Request) -> Reply:
        body = req.json()
        return Reply.raw(
            f"Success: LoRA adapter '{body['lora_name']}' added successfully.".encode(),
            content_type="text/plain",
        )

    def chat(req: Request) -> Reply:
        return Reply.json({**rec.OPENAI_CHAT, "model": req.json()["model"]})

    routes = {
        "POST /v1/load_lora_adapter": load,
        "POST /v1/chat/completions": chat,
        "POST /v1/unload_lora_adapter": lambda r: Reply.raw(b"Success", content_type="text/plain"),
        "GET /v1/models": lambda r: Reply.json(rec.VLLM_MODELS_WITH_LORA),
        "GET /health": lambda r: Reply.raw(b""),
    }
    a, b_ = serve(routes), serve(routes)
    b = backend_for("vllm", f"{a.url}/v1,{b_.url}/v1")
    assert isinstance(b, VllmBackend)
    assert (
        b.load_lora("sql-lora", "/adapters/sql")
        == ["Success: LoRA adapter 'sql-lora' added successfully."] * 2
    )
    assert [r.json() for r in a.requests] == [{"lora_name": "sql-lora", "lora_path": "/adapters/sql"}]
    assert len(b_.requests) == 1
    assert b.list_loras() == [LoraAdapter("sql-lora", "tiny-llama", "/adapters/sql")]
    assert (await b.achat("sql-lora", "SELECT?")).model == "sql-lora"
    assert await b.aunload_lora("sql-lora") == ["Success", "Success"]
    assert b.check_health() == [True, True]
