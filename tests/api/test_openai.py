"""OpenAI: every operation against its documented wire format, streams cut at arbitrary bytes."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from accelerate_lab.api import ToolCall, Usage
from accelerate_lab.api.backends.openai import OpenAIBackend
from accelerate_lab.api.testing import Reply, Request

from . import recordings as rec
from .conftest import Serve, backend_for
from .streams import offsets, split_reply

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]


def openai(serve: Serve, routes: dict[str, object]) -> tuple[OpenAIBackend, list[Request]]:
    server = serve(routes)  # type: ignore[arg-type]
    backend = backend_for("openai", server.url + "/v1")
    assert isinstance(backend, OpenAIBackend)
    return backend, server.requests


def test_chat_request_and_response(serve: Serve) -> None:
    b, requests = openai(serve, {"POST /v1/chat/completions": lambda r: Reply.json(rec.OPENAI_CHAT)})
    r = b.chat("gpt-4o-mini", [{"role": "user", "content": "Hello"}], temperature=0.2, system="Be nice.")
    assert (r.text, r.model, r.finish_reason) == ("Hello! How can I help?", "gpt-4o-mini-2024-07-18", "stop")
    assert r.usage == Usage(19, 10) and r.usage.total_tokens == 29
    sent = requests[0].json()
    assert sent["messages"][0] == {"role": "system", "content": "Be nice."} and sent["temperature"] == 0.2
    assert requests[0].headers["authorization"].startswith("Bearer ")


def test_tool_calls_are_parsed(serve: Serve) -> None:
    b, requests = openai(serve, {"POST /v1/chat/completions": lambda r: Reply.json(rec.OPENAI_TOOL_CHAT)})
    r = b.chat("gpt-4o-mini", "weather?", tools=TOOLS, tool_choice="auto")
    assert r.tool_calls == (ToolCall("call_abc123", "get_current_weather", {"location": "Boston, MA"}),)
    assert requests[0].json()["tools"] == TOOLS


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=offsets)
def test_stream_survives_any_byte_split(serve: Serve, cuts: list[int]) -> None:
    b, requests = openai(
        serve, {"POST /v1/chat/completions": lambda r: split_reply(Reply.sse(rec.OPENAI_STREAM), cuts)}
    )
    chunks = list(b.stream_chat("gpt-4o-mini", "hi"))
    assert "".join(c.text for c in chunks) == "Hello wörld!"
    assert chunks[-1].done and chunks[-1].usage == Usage(9, 3) and chunks[-1].finish_reason == "stop"
    assert requests[-1].json()["stream"] is True and requests[-1].json()["stream_options"] == {
        "include_usage": True
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=offsets)
async def test_streamed_tool_call_is_assembled(serve: Serve, cuts: list[int]) -> None:
    b, _ = openai(
        serve, {"POST /v1/chat/completions": lambda r: split_reply(Reply.sse(rec.OPENAI_TOOL_STREAM), cuts)}
    )
    chunks = [c async for c in b.astream_chat("gpt-4o-mini", "weather?", tools=TOOLS)]
    assert chunks[-1].tool_calls == (
        ToolCall("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", {"location": "Paris, France"}),
    )
    assert chunks[-1].finish_reason == "tool_calls"


def test_error_event_mid_stream_is_typed(serve: Serve) -> None:
    from accelerate_lab.api import StreamInterrupted

    events = [
        rec.OPENAI_STREAM[1],
        json.dumps({"error": {"message": "model overloaded", "type": "server_error"}}),
    ]
    b, _ = openai(serve, {"POST /v1/chat/completions": lambda r: Reply.sse(events)})
    got = []
    try:
        for c in b.stream_chat("gpt-4o-mini", "hi"):
            got.append(c.text)
    except StreamInterrupted as exc:
        assert "model overloaded" in str(exc)
    assert got == ["Hello"]


async def test_embeddings_models_and_sync_async_agree(serve: Serve) -> None:
    b, requests = openai(
        serve,
        {
            "POST /v1/embeddings": lambda r: Reply.json(rec.OPENAI_EMBEDDINGS),
            "GET /v1/models": lambda r: Reply.json(rec.OPENAI_MODELS),
        },
    )
    expected = [[0.0023064255, -0.009327292], [0.5, -0.25]]  # re-ordered by index
    assert b.embed(None, ["a", "b"]) == expected == await b.aembed(None, ["a", "b"])
    assert requests[0].json() == {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert b.list_models() == ["gpt-4o-mini", "text-embedding-3-small"] == await b.alist_models()


async def test_images_audio_and_moderation(serve: Serve) -> None:
    def transcription(req: Request) -> Reply:
        assert req.headers["content-type"].startswith("multipart/form-data")
        assert b'name="model"' in req.body and b"RIFF" in req.body
        return Reply.json(rec.OPENAI_TRANSCRIPTION)

    b, requests = openai(
        serve,
        {
            "POST /v1/images/generations": lambda r: Reply.json(rec.OPENAI_IMAGES),
            "POST /v1/audio/transcriptions": transcription,
            "POST /v1/audio/speech": lambda r: Reply.raw(b"ID3\x04fake-mp3", content_type="audio/mpeg"),
            "POST /v1/moderations": lambda r: Reply.json(rec.OPENAI_MODERATION),
        },
    )
    images = b.generate_image("a cat", size="1024x1024", response_format="b64_json")
    assert images[0].bytes() == b"\x89PNG\r\n\x1a\n" and images[0].revised_prompt == "A cat."
    assert requests[0].json() == {
        "model": "dall-e-3",
        "prompt": "a cat",
        "size": "1024x1024",
        "response_format": "b64_json",
    }
    assert b.transcribe(b"RIFF....WAVEfmt ") == rec.OPENAI_TRANSCRIPTION["text"]
    assert await b.atranscribe(b"RIFF....WAVEfmt ") == rec.OPENAI_TRANSCRIPTION["text"]
    assert b.speech("hello", voice="nova") == b"ID3\x04fake-mp3" == await b.aspeech("hello", voice="nova")
    assert requests[-1].json() == {"model": "tts-1", "input": "hello", "voice": "nova"}
    mod = b.moderate("you are awful")[0]
    assert mod.flagged and mod.categories["harassment"] and mod.category_scores["harassment"] == 0.91
    assert (await b.amoderate(["x"]))[0].flagged
    assert len(await b.agenerate_image("a dog")) == 1
