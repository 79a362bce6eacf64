"""Gemini: generateContent, streamGenerateContent over SSE, embedContent, inline images, function calls."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from accelerate_lab.api import ToolCall, Usage
from accelerate_lab.api.testing import Reply

from . import recordings as rec
from .conftest import Serve, backend_for
from .streams import offsets, split_reply

BASE = "/v1beta/models/gemini-2.0-flash"


def test_generate_with_system_image_and_config(serve: Serve) -> None:
    server = serve({f"POST {BASE}:generateContent": lambda r: Reply.json(rec.gemini_response("A lamp."))})
    b = backend_for("gemini", server.url + "/v1beta")
    image = {"type": "image", "data": b"\x89PNG", "mime_type": "image/png"}
    r = b.chat(
        None,
        [
            {"role": "system", "content": "Be short."},
            {"role": "user", "content": [{"type": "text", "text": "What?"}, image]},
        ],
        temperature=0.5,
        max_tokens=64,
    )
    assert (r.text, r.finish_reason, r.usage) == ("A lamp.", "STOP", Usage(4, 7))
    req = server.requests[0]
    assert req.headers["x-goog-api-key"] == "test-key-0123456789" and "key" not in req.query
    body = req.json()
    assert body["systemInstruction"] == {"parts": [{"text": "Be short."}]}
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}}
    assert body["generationConfig"] == {"temperature": 0.5, "maxOutputTokens": 64}


def test_function_calls(serve: Serve) -> None:
    server = serve({f"POST {BASE}:generateContent": lambda r: Reply.json(rec.GEMINI_FUNCTION_CALL)})
    tools = [{"type": "function", "function": {"name": "set_light_values", "parameters": {"type": "object"}}}]
    r = backend_for("gemini", server.url + "/v1beta").chat(None, "dim the lights", tools=tools)
    assert r.tool_calls == (
        ToolCall("set_light_values", "set_light_values", {"brightness": 25, "color_temp": "warm"}),
    )
    assert server.requests[0].json()["tools"] == [
        {"functionDeclarations": [{"name": "set_light_values", "parameters": {"type": "object"}}]}
    ]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=offsets)
async def test_stream_over_sse_survives_any_byte_split(serve: Serve, cuts: list[int]) -> None:
    server = serve(
        {f"POST {BASE}:streamGenerateContent": lambda r: split_reply(Reply.sse(rec.GEMINI_STREAM), cuts)}
    )
    chunks = [c async for c in backend_for("gemini", server.url + "/v1beta").astream_chat(None, "story")]
    assert "".join(c.text for c in chunks) == "Once upon a time there was a lamp."
    assert chunks[-1].done and chunks[-1].usage == Usage(4, 7)
    assert server.requests[-1].query == {"alt": "sse"}


async def test_embed_single_and_batch_and_models(serve: Serve) -> None:
    server = serve(
        {
            "POST /v1beta/models/text-embedding-004:embedContent": lambda r: Reply.json(rec.GEMINI_EMBED),
            "POST /v1beta/models/text-embedding-004:batchEmbedContents": lambda r: Reply.json(
                rec.GEMINI_BATCH_EMBED
            ),
            "GET /v1beta/models": lambda r: Reply.json(rec.GEMINI_MODELS),
        }
    )
    b = backend_for("gemini", server.url + "/v1beta")
    assert b.embed(None, "hello") == [[0.013168523, -0.008711934, -0.046782676]]
    assert await b.aembed(None, ["a", "b"]) == [[0.1, 0.2], [0.3, 0.4]]
    assert server.requests[1].json()["requests"][0] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "a"}]},
    }
    assert b.list_models() == ["gemini-2.0-flash"]
