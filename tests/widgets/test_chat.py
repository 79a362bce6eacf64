"""Chat in the kernel: streaming from a real local HTTP server, failover, errors, stop, no keys in state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence

import pytest

import accelerate_lab as al
from accelerate_lab.api.testing import LocalServer, Reply, Request, sample_routes
from accelerate_lab.widgets import Chat
from accelerate_lab.widgets._chat_backend import LOCAL, default_backend, parse_target, plan_route

SECRET = "sk-test-0123456789abcdefSECRET"


def _slow_echo(req: Request) -> Reply:
    words = f"echo: {req.json()['messages'][-1]['content']}".split(" ")
    lines = [{"text": w if i == 0 else " " + w} for i, w in enumerate(words)] + [{"done": True}]
    body = [json.dumps(line).encode() + b"\n" for line in lines]
    return Reply(200, {"content-type": "application/x-ndjson"}, body, chunk_delay=0.15)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(sample_routes()) as running:
        yield running


def _chat(url: str, failover: Sequence[str] = (LOCAL,)) -> Chat:
    metadata = {"sample_api_url": url, "sample_api_key": SECRET, "max_retries": 0}
    return Chat(backend="sample", metadata=metadata, failover=failover)


def test_chat_streams_the_reply_into_the_history(server: LocalServer) -> None:
    chat = _chat(server.url)
    deltas: list[str] = []
    chat.send = lambda content, buffers=None: deltas.append(content["text"])
    assert chat.ask("hello there", wait=True) == "echo: hello there"
    assert chat.messages[-1] == {
        "role": "assistant",
        "content": "echo: hello there",
        "by": "sample · sample-echo",
    }
    assert "".join(deltas) == "echo: hello there"
    assert chat.streaming is False and "answered" in chat.status


def test_backend_picker_lists_the_registered_backends() -> None:
    chat = al.Chat(backend="sample")
    assert {"openai", "claude", "sample", "vllm"} <= set(chat.backends) and chat.backend == "sample"


def test_stop_ends_the_stream_and_keeps_what_arrived() -> None:
    with LocalServer({"POST /chat": _slow_echo}) as server:
        chat = _chat(server.url)
        chat.ask("one two three four five six seven")
        time.sleep(0.4)
        chat.stop()
        deadline = time.monotonic() + 5
        while chat.streaming and time.monotonic() < deadline:
            time.sleep(0.02)
    reply = chat.messages[-1]["content"]
    assert chat.streaming is False and "stopped" in chat.status
    assert reply.startswith("echo:") and "seven" not in reply


def test_rate_limit_is_shown_with_the_servers_retry_after() -> None:
    limited = {"POST /chat": lambda req: Reply.json({"error": "slow down"}, 429, {"retry-after": "7"})}
    with LocalServer(limited) as server:
        chat = _chat(server.url, failover=())
        assert chat.ask("hi", wait=True) == ""
    assert chat.error["kind"] == "rate-limit" and "retry in 7 s" in chat.error["text"]


def test_open_circuit_is_shown_without_reaching_the_server() -> None:
    broken = {"POST /chat": lambda req: Reply.json({"error": "down"}, 503)}
    with LocalServer(broken) as server:
        metadata = {"sample_api_url": server.url, "max_retries": 0, "circuit_failure_threshold": 1}
        chat = Chat(backend="sample", metadata=metadata, failover=())
        chat.ask("first", wait=True)
        chat.ask("second", wait=True)
        calls = len(server.requests)
    assert chat.error["kind"] == "circuit-open" and calls == 1


def test_failover_is_announced_when_the_first_backend_has_no_key(server: LocalServer) -> None:
    chat = Chat(backend="openai", metadata={"sample_api_url": server.url}, failover=("sample",))
    assert chat.ask("hi", wait=True) == "echo: hi"
    assert "Failover taken: openai failed (config" in chat.notice and chat.error == {}


def test_keys_stay_out_of_widget_state_and_repr(server: LocalServer) -> None:
    chat = _chat(server.url)
    chat.ask("hi", wait=True)
    state = json.dumps(chat.get_state(), default=str)
    assert SECRET not in state and SECRET not in repr(chat)
    assert server.requests[-1].headers.get("authorization", "").endswith(SECRET)  # the key was used


def test_targets_name_a_backend_only_when_the_prefix_is_one() -> None:
    assert parse_target("sample:sample-echo") == ("sample", "sample-echo")
    assert parse_target("qwen2.5:0.5b") == (None, "qwen2.5:0.5b")
    assert parse_target("") == (None, None)
    assert parse_target("local") == ("local", None)  # a bare backend name: its default model


def test_without_keys_chat_defaults_to_the_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "CLAUDE_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GROQ_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    assert default_backend() == "local"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert default_backend() == "claude"
    assert [a.name for a in plan_route(None, "gpt-4o-mini")] == ["openai", "local"]
