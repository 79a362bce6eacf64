"""The `local` API backend: the embedded model behind the same chat/stream_chat (sync and async) API."""

from __future__ import annotations

import asyncio

import pytest

from accelerate_lab.api import (
    ApiBackend,
    ConfigurationError,
    RequestTimeout,
    UnsupportedOperation,
    create_api_backend,
    find_compatible_backend,
    get_available_backends,
)
from accelerate_lab.api.backends.local import DEFAULT_MODEL, LocalBackend
from accelerate_lab.models.llm import Llama

QUESTION = "What is the capital of France?"


@pytest.fixture
def local(llama: Llama) -> ApiBackend:
    return create_api_backend("local")


def test_local_is_registered_and_matches_gguf_model_names(local: ApiBackend) -> None:
    assert isinstance(local, LocalBackend) and "local" in get_available_backends()
    assert find_compatible_backend("SmolLM2-135M-Instruct") == "local"
    assert find_compatible_backend("models/tiny.gguf") == "local"
    assert local.get_default_model() == DEFAULT_MODEL == local.list_models()[0]
    assert local.check_health() == [True]
    assert local.status()["active"] == 0


@pytest.mark.slow
def test_chat_and_stream_chat_give_the_models_reply(local: ApiBackend, llama: Llama) -> None:
    expected = llama.chat(QUESTION)
    reply = local.chat(None, QUESTION)
    assert reply.text == expected.text and reply.model == DEFAULT_MODEL and reply.finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == len(expected.token_ids)
    chunks = list(local.stream_chat(None, [{"role": "user", "content": QUESTION}]))
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert "".join(c.text for c in chunks) == expected.text and chunks[-1].usage == reply.usage


@pytest.mark.slow
async def test_async_forms_match_and_cancelling_a_stream_frees_the_queue(local: ApiBackend) -> None:
    reply = await local.achat(None, QUESTION, max_tokens=6)
    streamed = [c async for c in local.astream_chat(None, QUESTION, max_tokens=6)]
    assert "".join(c.text for c in streamed) == reply.text and reply.finish_reason == "length"
    stream = local.astream_chat(None, "Tell me a long story.", max_tokens=200)
    first = await anext(stream)
    await stream.aclose()
    assert first.text and local.status()["active"] == 0
    heartbeat = asyncio.create_task(asyncio.sleep(0.01))  # the loop stays live while a reply is computed
    await local.achat(None, "Hi", max_tokens=2)
    assert heartbeat.done()


@pytest.mark.slow
def test_options_map_to_sampling(local: ApiBackend, llama: Llama) -> None:
    short = local.chat(None, QUESTION, max_tokens=3)
    assert short.finish_reason == "length" and short.usage is not None and short.usage.completion_tokens == 3
    full = llama.chat(QUESTION).text
    assert local.chat(None, QUESTION, stop="Paris").text == full[: full.index("Paris")]
    pirate = [{"role": "system", "content": "Talk like a pirate."}, {"role": "user", "content": QUESTION}]
    assert local.chat(None, QUESTION, system="Talk like a pirate.").text == llama.chat(pirate).text


def test_bad_options_and_models_raise_api_errors(local: ApiBackend) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown sampling option.*tools"):
        local.chat(None, "hi", tools=[])
    with pytest.raises(ConfigurationError, match="temperature"):
        local.chat(None, "hi", temperature=-1.0)
    with pytest.raises(ConfigurationError, match=r"cannot load model '/nowhere/model.gguf'"):
        local.chat("/nowhere/model.gguf", "hi")
    with pytest.raises(UnsupportedOperation, match="local has no embed"):
        local.embed(None, "hi")


@pytest.mark.slow
def test_a_generation_past_its_timeout_stops_with_request_timeout(local: ApiBackend) -> None:
    with pytest.raises(RequestTimeout, match="timeout"):
        local.chat(None, "Tell me a long story.", max_tokens=100, timeout=0.01)
    assert local.status()["active"] == 0
