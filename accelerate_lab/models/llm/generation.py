"""Generating a reply: the decode loop with sampling, stop tokens and strings, and text streaming.

A `Generation` is an iterator of text pieces, produced as tokens are decoded; a stop string is cut
from the text (pieces that could begin one are held back until it is clear they do not). When it
ends, `stats` tells how many tokens it took and how fast, and `reply()` returns everything at once.

It is also an async iterator (``async for piece in llm.stream_chat(...)``, ``await g.reply_async()``),
which awaits each step's data with ``numpy_async``: the form a ``browser:webgpu`` model needs in a
notebook cell. The network runs on the model's device either way; each step downloads only what the
sampler needs, the chosen token id when greedy (argmax on the device), else the logits.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from accelerate_lab.hal.browser_errors import BrowserDataPending
from accelerate_lab.models.llm.kv_cache import KVCache
from accelerate_lab.models.llm.network import LlamaNetwork
from accelerate_lab.models.llm.sampling import Sampler, SamplingParams
from accelerate_lab.models.llm.tokenizer import Tokenizer
from accelerate_lab.tensor import Tensor

__all__ = ["FinishReason", "Generation", "GenerationStats", "Reply", "split_at_stop"]

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class GenerationStats:
    """Token counts and timings of one generation; ``cached_tokens`` of the prompt came from the cache."""

    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    prompt_seconds: float
    decode_steps: int
    decode_seconds: float
    finish_reason: FinishReason

    @property
    def prompt_tokens_per_second(self) -> float:
        computed = self.prompt_tokens - self.cached_tokens
        return computed / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        return self.decode_steps / self.decode_seconds if self.decode_seconds > 0 else 0.0


@dataclass(frozen=True)
class Reply:
    """A finished generation: its text, the token ids it produced, and its stats."""

    text: str
    token_ids: tuple[int, ...]
    stats: GenerationStats


def split_at_stop(text: str, stops: Sequence[str]) -> tuple[str, str, bool]:
    """``(safe, held, stopped)``: the text that can be shown, the tail that may begin a stop string,
    and whether a stop string occurred (``safe`` then ends before it).

    >>> split_at_stop("Hello, Us", ["User:"])
    ('Hello, ', 'Us', False)
    >>> split_at_stop("Hi User: x", ["User:"])
    ('Hi ', '', True)
    """
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    if found:
        return text[: min(found)], "", True
    hold = 0
    for stop in stops:
        hold = max(
            hold, next((k for k in range(min(len(stop) - 1, len(text)), 0, -1) if text.endswith(stop[:k])), 0)
        )
    return text[: len(text) - hold], text[len(text) - hold :], False


class Generation:
    """Text pieces of a reply, decoded as they are generated (iterate, or call `reply()`; or their async
    forms). ``timeout`` bounds each awaited step (None: the device's own limit)."""

    def __init__(
        self,
        network: LlamaNetwork,
        tokenizer: Tokenizer,
        prompt_ids: Sequence[int],
        cache: KVCache,
        params: SamplingParams,
        stop_token_ids: Collection[int],
        on_finish: Callable[[Generation], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        if not prompt_ids:
            raise ValueError("a generation needs at least one prompt token")
        self.network = network
        self.tokenizer = tokenizer
        self.prompt_ids = list(prompt_ids)
        self.cache = cache
        self.params = params
        self.stop_token_ids = frozenset(stop_token_ids)
        self.token_ids: list[int] = []
        self.stats: GenerationStats | None = None
        self.timeout = timeout
        self._on_finish = on_finish
        self._pieces: list[str] = []
        self._run = self._generate()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            wanted = next(self._run)
            while isinstance(wanted, Tensor):
                wanted = self._run.send(wanted.numpy())
        except BaseException as error:  # a step that could not be read ends the generation
            self._run.close()
            if isinstance(error, BrowserDataPending):
                error.add_note(
                    "a model on a browser device generates in an async form: `async for piece in "
                    "llm.stream_chat(...)`, `await llm.chat_async(...)`, `await generation.reply_async()`"
                )
            raise
        self._pieces.append(wanted)
        return wanted

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        try:
            wanted = next(self._run)
            while isinstance(wanted, Tensor):
                wanted = self._run.send(await wanted.numpy_async(self.timeout))
        except StopIteration:
            raise StopAsyncIteration from None
        except BaseException:  # a timeout, a lost device, a cancelled task: the generation ends
            self._run.close()
            raise
        self._pieces.append(wanted)
        return wanted

    @property
    def text(self) -> str:
        """The text produced so far."""
        return "".join(self._pieces)

    def close(self) -> None:
        """Stop generating (the stats say ``cancelled`` unless it had finished)."""
        self._run.close()

    def reply(self) -> Reply:
        """Generate to the end; the whole reply."""
        for _ in self:
            pass
        return self._reply()

    async def reply_async(self, timeout: float | None = None) -> Reply:
        """`reply`, awaiting each step (``timeout`` s at most each, None: ``self.timeout``):
        ``await g.reply_async()`` in a notebook cell, as a ``browser:webgpu`` model needs."""
        if timeout is not None:
            self.timeout = timeout
        async for _ in self:
            pass
        return self._reply()

    def _reply(self) -> Reply:
        assert self.stats is not None
        return Reply(self.text, tuple(self.token_ids), self.stats)

    def _generate(self) -> Generator[Tensor | str, np.ndarray | None, None]:
        """Yields the tensor each step needs on the host (and is sent its data), and the text pieces."""
        started = time.perf_counter()
        cached = self.cache.reuse(self.prompt_ids)
        sampler, stream = Sampler(self.params), self.tokenizer.text_stream()
        logits = self.network.forward(self.prompt_ids[cached:], self.cache)
        held, steps, prompt_seconds, decode_started = "", 0, -1.0, 0.0
        finish: FinishReason = "cancelled"
        try:
            fetched = yield sampler.wanted(logits)
            prompt_seconds, decode_started = time.perf_counter() - started, time.perf_counter()
            while True:
                assert fetched is not None
                token = sampler.pick(fetched)
                if token in self.stop_token_ids:
                    finish = "stop"
                    break
                self.token_ids.append(token)
                safe, held, stopped = split_at_stop(held + stream.push(token), self.params.stop)
                if safe:
                    yield safe
                if stopped:
                    finish = "stop"
                    return
                if len(self.token_ids) == self.params.max_new_tokens or self.cache.remaining == 0:
                    finish = "length"
                    break
                fetched = yield sampler.wanted(self.network.forward([token], self.cache))
                steps += 1
            tail = held + stream.flush()
            if tail:
                yield tail
        finally:
            if prompt_seconds < 0:  # closed while the prompt's step was awaited
                prompt_seconds, decode_started = time.perf_counter() - started, time.perf_counter()
            self.stats = GenerationStats(
                len(self.prompt_ids),
                cached,
                len(self.token_ids),
                prompt_seconds,
                steps,
                time.perf_counter() - decode_started,
                finish,
            )
            if self._on_finish is not None:
                self._on_finish(self)
