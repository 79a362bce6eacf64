"""Generation with the shipped SmolLM2: greedy tokens against transformers, streaming, stops, the KV cache."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from accelerate_lab.hal import cpu_gguf
from accelerate_lab.models.llm import ContextLengthExceeded, Llama

Messages = str | list[dict[str, str]]

PROMPTS: list[Messages] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    [
        {"role": "system", "content": "You answer like a pirate."},
        {"role": "user", "content": "How are you today?"},
    ],
    [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {
            "role": "user",
            "content": "Explain photosynthesis in one paragraph, then list three plants and their "
            "uses in detail, with numbers: 1, 2 and 3.",
        },
    ],
]


@pytest.mark.slow
@pytest.mark.parametrize("messages", PROMPTS, ids=["france", "haiku", "pirate", "multi-turn"])
def test_greedy_tokens_match_transformers_for_32_steps(
    llama: Llama, hf_model: Any, messages: Messages
) -> None:
    torch = pytest.importorskip("torch")
    ids = llama.prompt_ids(messages)
    prompt = torch.tensor([ids])
    with torch.no_grad():  # eos_token_id=None: 32 tokens even past the end of the turn, as ours below
        out = hf_model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=32,
            do_sample=False,
            eos_token_id=None,
        )
    reply = llama.generate(ids, max_new_tokens=32, stop_token_ids=()).reply()
    assert list(reply.token_ids) == out[0, len(ids) :].tolist()
    assert reply.stats.finish_reason == "length"


@pytest.mark.slow
def test_streamed_pieces_join_to_the_reply_which_ends_at_the_end_of_turn(llama: Llama) -> None:
    generation = llama.stream_chat("What is the capital of France?", max_new_tokens=40)
    pieces = list(generation)
    assert len(pieces) > 3 and "".join(pieces) == generation.text
    assert "Paris" in generation.text
    assert generation.stats is not None and generation.stats.finish_reason == "stop"
    assert generation.text == llama.tokenizer.decode(generation.token_ids)
    assert generation.stats.completion_tokens == len(generation.token_ids) < 40


@pytest.mark.slow
def test_stop_strings_and_max_new_tokens_end_the_reply(llama: Llama) -> None:
    full = llama.chat("What is the capital of France?").text
    cut = llama.chat("What is the capital of France?", stop=["France"])
    assert cut.stats.finish_reason == "stop" and cut.text == full[: full.index("France")]
    short = llama.chat("What is the capital of France?", max_new_tokens=3)
    assert short.stats.finish_reason == "length" and len(short.token_ids) == 3


@pytest.mark.slow
def test_seeded_sampling_is_reproducible(llama: Llama) -> None:
    a, b = (
        llama.chat("Tell me a story.", temperature=0.9, top_p=0.95, seed=11, max_new_tokens=12) for _ in "ab"
    )
    c = llama.chat("Tell me a story.", temperature=0.9, top_p=0.95, seed=12, max_new_tokens=12)
    assert a.token_ids == b.token_ids != c.token_ids


@pytest.mark.slow
def test_a_chat_session_reuses_its_cache_and_frees_it(llama: Llama) -> None:
    with llama.start_chat(max_new_tokens=8) as session:
        session.send("Name a colour.")
        second = session.send("Another one?")
        assert second.stats.cached_tokens > 20
        fresh = llama.generate(llama.prompt_ids(session.messages[:-1]), max_new_tokens=8).reply()
        assert fresh.token_ids == second.token_ids
        assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]
    assert session.cache.freed and session.cache.nbytes == 0
    with pytest.raises(ContextLengthExceeded, match="freed with its conversation"):
        session.send("Still there?")


@pytest.mark.slow
def test_the_kv_cache_is_bounded(llama: Llama) -> None:
    ids = llama.prompt_ids("Hello!")
    with pytest.raises(ContextLengthExceeded, match="larger max_context"):
        llama.generate(ids, cache=llama.new_cache(capacity=len(ids) - 1)).reply()
    with llama.new_cache(capacity=len(ids) + 2) as cache:
        reply = llama.generate(ids, cache=cache, stop_token_ids=()).reply()
    assert reply.stats.finish_reason == "length" and len(reply.token_ids) == 3
    with pytest.raises(ContextLengthExceeded, match=r"choose 1 \.\. 8192"):
        llama.new_cache(capacity=10**6)


@pytest.mark.slow
def test_weights_are_shared_tensors_under_the_models_name(llama: Llama) -> None:
    from accelerate_lab.sharing import TensorSharingManager

    manager = TensorSharingManager()
    shared = Llama.from_pretrained(sharing=manager)
    usage = manager.get_model_memory_usage()[shared.name]
    assert shared.name == "SmolLM2-135M-Instruct" and len(usage.tensors) == 2 + 6 * shared.config.num_layers
    if cpu_gguf.compiled():  # GGUF's packed blocks (~0.6 to 1.1 bytes a weight), the tied head as Q8_0
        assert "SmolLM2-135M-Instruct/token_embd.weight.Q8_0" in usage.tensors
        assert 80_000_000 < usage.bytes < 110_000_000
    else:  # float32 weights, the tied output head not counted twice
        assert "SmolLM2-135M-Instruct/token_embd.weight" in usage.tensors
        assert usage.bytes > 4 * 130_000_000
    assert shared.chat(PROMPTS[0]).text == llama.chat(PROMPTS[0]).text
    shared.release()
    assert shared.name not in manager.get_model_memory_usage()


@pytest.mark.slow
async def test_the_async_forms_stream_the_same_reply(llama: Llama) -> None:
    expected = llama.generate(llama.prompt_ids("Name a colour."), max_new_tokens=6, stop_token_ids=()).reply()
    generation = llama.stream_chat("Name a colour.", max_new_tokens=6, stop_token_ids=())
    pieces = [piece async for piece in generation]
    assert "".join(pieces) == expected.text and generation.token_ids == list(expected.token_ids)
    assert generation.stats is not None and generation.stats.finish_reason == "length"
    reply = await llama.chat_async("Name a colour.", max_new_tokens=6, stop_token_ids=())
    assert (reply.text, reply.token_ids) == (expected.text, expected.token_ids)
    with llama.start_chat(max_new_tokens=4) as session:
        first = await session.send_async("Name a colour.")
        assert session.messages[-1] == {"role": "assistant", "content": first.text}


@pytest.mark.slow
async def test_a_step_that_cannot_be_read_ends_the_generation_and_frees_its_cache(
    llama: Llama, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accelerate_lab.tensor import Tensor

    async def lost(self: Tensor, timeout: float | None = None) -> np.ndarray:
        raise TimeoutError(f"no reply within {timeout} s")

    generation = llama.generate(llama.prompt_ids("Hi"), max_new_tokens=4)
    monkeypatch.setattr(Tensor, "numpy_async", lost)
    with pytest.raises(TimeoutError, match=r"within 0\.5 s"):
        await generation.reply_async(timeout=0.5)
    assert generation.stats is not None and generation.stats.finish_reason == "cancelled"
    assert generation.cache.freed and generation.token_ids == []
    with pytest.raises(StopAsyncIteration):
        await anext(generation)


@pytest.mark.slow
def test_reading_a_step_synchronously_from_a_browser_names_the_async_forms(
    llama: Llama, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accelerate_lab.hal.browser_errors import BrowserDataPending
    from accelerate_lab.tensor import Tensor

    def pending(self: Tensor) -> np.ndarray:
        raise BrowserDataPending("the data of this browser:webgpu tensor is in the browser")

    generation = llama.generate(llama.prompt_ids("Hi"), max_new_tokens=4)
    monkeypatch.setattr(Tensor, "numpy", pending)
    with pytest.raises(BrowserDataPending, match=r"await llm\.chat_async"):
        generation.reply()
    assert generation.stats is not None and generation.stats.finish_reason == "cancelled"
