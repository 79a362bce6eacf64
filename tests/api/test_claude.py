"""Claude Messages API: request conversion, tool-use blocks, every SSE event type, byte splits."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings

from accelerate_lab.api import StreamInterrupted, ToolCall, UnsupportedOperation, Usage
from accelerate_lab.api.testing import Reply, Sequenced

from . import recordings as rec
from .conftest import Serve, backend_for
from .streams import offsets, split_reply

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


def test_request_has_system_tools_images_and_headers(serve: Serve) -> None:
    server = serve({"POST /v1/messages": lambda r: Reply.json(rec.CLAUDE_MESSAGE)})
    b = backend_for("claude", server.url)
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "look", "arguments": '{"x": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "d",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    r = b.chat("claude-3-5-haiku-latest", messages, tools=tools, max_tokens=200)
    sent = server.requests[0]
    assert (
        sent.headers["x-api-key"] == "test-key-0123456789"
        and sent.headers["anthropic-version"] == "2023-06-01"
    )
    body = sent.json()
    assert body["system"] == "You are terse." and body["max_tokens"] == 200
    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"x": 1}}
    ]
    assert body["messages"][2]["content"][0]["type"] == "tool_result"
    assert body["tools"] == [
        {"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert r.text == "Let me check." and r.finish_reason == "tool_use" and r.usage == Usage(472, 91)
    assert r.tool_calls == (
        ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", {"location": "San Francisco, CA"}),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=offsets)
def test_stream_events_survive_any_byte_split(serve: Serve, cuts: list[int]) -> None:
    server = serve({"POST /v1/messages": lambda r: split_reply(Reply.sse(rec.CLAUDE_STREAM), cuts)})
    chunks = list(backend_for("claude", server.url).stream_chat(None, "hi"))
    assert "".join(c.text for c in chunks) == "Hello there, ünïcode!"
    last = chunks[-1]
    assert last.done and last.finish_reason == "tool_use" and last.usage == Usage(25, 89)
    assert last.tool_calls == (
        ToolCall("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", {"location": "San Francisco, CA"}),
    )
    assert server.requests[-1].json()["stream"] is True


async def test_overloaded_error_event_before_output_is_retried(serve: Serve) -> None:
    handler = Sequenced(
        [Reply.sse([rec.CLAUDE_STREAM[0], rec.CLAUDE_OVERLOADED_EVENT]), Reply.sse(rec.CLAUDE_STREAM)]
    )
    server = serve({"POST /v1/messages": handler})
    chunks = [c async for c in backend_for("claude", server.url).astream_chat(None, "hi")]
    assert chunks[-1].done and handler.calls == 2


def test_error_event_after_output_interrupts(serve: Serve) -> None:
    events = [*rec.CLAUDE_STREAM[:4], rec.CLAUDE_OVERLOADED_EVENT]
    server = serve({"POST /v1/messages": lambda r: Reply.sse(events)})
    with pytest.raises(StreamInterrupted, match="overloaded_error"):
        list(backend_for("claude", server.url).stream_chat(None, "hi"))


async def test_models_and_no_embeddings(serve: Serve) -> None:
    server = serve({"GET /v1/models": lambda r: Reply.json(rec.CLAUDE_MODELS)})
    b = backend_for("claude", server.url)
    assert await b.alist_models() == ["claude-3-5-haiku-20241022"]
    with pytest.raises(UnsupportedOperation, match="claude has no embed"):
        b.embed(None, "x")


def test_usage_counts_cached_prompt_tokens(serve: Serve) -> None:
    cached = {"input_tokens": 3, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 69}
    message = {**rec.CLAUDE_MESSAGE, "usage": {**cached, "output_tokens": 91}}
    server = serve({"POST /v1/messages": lambda r: Reply.json(message)})
    r = backend_for("claude", server.url).chat(None, "hi")
    assert r.usage == Usage(3 + 400 + 69, 91)  # every prompt token, as OpenAI's prompt_tokens counts them
