"""`ChatSession`: one conversation with a model, keeping its KV cache between turns.

Each turn re-renders the whole conversation with the chat template; the cache already holds the
tokens of earlier turns, so only the new ones are computed. ``close()`` (or leaving a ``with``
block) frees the cache with the conversation.

>>> with llm.start_chat(system="Answer in one word.") as chat:  # doctest: +SKIP
...     chat.send("Capital of France?").text
'Paris.'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelerate_lab.models.llm.generation import Generation, Reply
from accelerate_lab.models.llm.sampling import SamplingParams

if TYPE_CHECKING:
    from accelerate_lab.models.llm.model import Llama

__all__ = ["ChatSession"]


class ChatSession:
    """Messages so far (``messages``) and the KV cache that holds them."""

    def __init__(
        self, model: Llama, system: str | None = None, sampling: SamplingParams | None = None
    ) -> None:
        self.model = model
        self.sampling = sampling or SamplingParams()
        self.messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        self.cache = model.new_cache()

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ChatSession({len(self.messages)} messages, {self.cache!r})"

    def stream(self, text: str, **options: object) -> Generation:
        """Add a user message; the reply's text pieces (added to ``messages`` when it finishes)."""
        self.messages.append({"role": "user", "content": text})
        ids = self.model.prompt_ids(self.messages)

        def record(generation: Generation) -> None:
            self.messages.append({"role": "assistant", "content": generation.text})

        params = self.sampling.updated(**options)
        stops = self.model.end_token_ids if params.stop_token_ids is None else params.stop_token_ids
        return Generation(self.model.network, self.model.tokenizer, ids, self.cache, params, stops, record)

    def send(self, text: str, **options: object) -> Reply:
        """Add a user message; the whole reply."""
        return self.stream(text, **options).reply()

    async def send_async(self, text: str, *, timeout: float | None = None, **options: object) -> Reply:
        """`send`, awaiting each step (``timeout`` s at most each), as a ``browser:webgpu`` model needs;
        ``async for piece in chat.stream(text)`` streams the reply."""
        return await self.stream(text, **options).reply_async(timeout)

    def close(self) -> None:
        """Free the KV cache; the session cannot be used afterwards."""
        self.cache.free()
