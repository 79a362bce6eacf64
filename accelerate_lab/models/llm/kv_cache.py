"""`KVCache`: the keys and values of a conversation's tokens, in fixed buffers of bounded size.

Each layer holds ``(kv_heads, capacity, head_dim)`` buffers on the model's device; a forward pass
writes its new positions in place and attends over the filled prefix. The cache remembers which
tokens it holds, so a follow-up prompt that starts with them (the next turn of a chat) only computes
the new ones. ``free()`` (or leaving a ``with`` block) releases the buffers.

>>> from accelerate_lab.models.llm.config import LlamaConfig
>>> c = LlamaConfig(10, 8, 16, num_layers=2, num_heads=2, num_kv_heads=1, rope_theta=1e4,
...                 rms_norm_eps=1e-5, context_length=64)
>>> with KVCache(c, capacity=16, device="cpu") as cache:
...     cache.capacity, cache.length, cache.nbytes
(16, 0, 1024)
"""

from __future__ import annotations

from collections.abc import Sequence

from accelerate_lab.hal.device import Device
from accelerate_lab.hal.registry import get_device
from accelerate_lab.models.llm.config import LlamaConfig
from accelerate_lab.models.llm.errors import ContextLengthExceeded
from accelerate_lab.tensor import Tensor, ops, zeros

__all__ = ["KVCache"]


class KVCache:
    """Per-layer key and value buffers for up to ``capacity`` positions (at most the model's context)."""

    def __init__(self, config: LlamaConfig, capacity: int, device: str | Device) -> None:
        if not 0 < capacity <= config.context_length:
            raise ContextLengthExceeded(
                f"a KV cache of {capacity} positions is not possible: choose 1 .. {config.context_length} "
                "(the model's context length)"
            )
        self.capacity = capacity
        self.device = get_device(device)
        # a broadcast view of one zero, whose `zeros()` are allocated zero-filled on the device: a
        # browser device gets no megabytes of zeros to upload
        blank = ops.broadcast_to(
            zeros((1, 1, 1), device=self.device), (config.num_kv_heads, capacity, config.head_dim)
        )
        self._keys: list[Tensor] = [blank.zeros() for _ in range(config.num_layers)]
        self._values: list[Tensor] = [blank.zeros() for _ in range(config.num_layers)]
        self.tokens: list[int] = []

    def __enter__(self) -> KVCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __repr__(self) -> str:
        state = "freed" if self.freed else f"{self.length}/{self.capacity} positions"
        return f"KVCache({state}, {self.nbytes} bytes on {self.device.name})"

    @property
    def length(self) -> int:
        """Positions filled."""
        return len(self.tokens)

    @property
    def remaining(self) -> int:
        return self.capacity - self.length

    @property
    def freed(self) -> bool:
        return not self._keys

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in (*self._keys, *self._values))

    def reserve(self, count: int) -> int:
        """Check that ``count`` more positions fit; the position the first of them takes."""
        if self.freed:
            raise ContextLengthExceeded("this KV cache was freed with its conversation: start a new one")
        if count > self.remaining:
            raise ContextLengthExceeded(
                f"{count} more tokens do not fit the KV cache ({self.length} of {self.capacity} positions "
                "used): shorten the conversation or create the model with a larger max_context"
            )
        return self.length

    def write(self, layer: int, start: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``(kv_heads, n, head_dim)`` keys and values at ``start`` (from `reserve`); return every
        position's keys and values up to and including them."""
        end = start + keys.shape[1]
        self._keys[layer][:, start:end] = keys
        self._values[layer][:, start:end] = values
        return self._keys[layer][:, :end], self._values[layer][:, :end]

    def commit(self, tokens: Sequence[int]) -> None:
        """Record the tokens whose keys and values the last forward pass wrote."""
        self.tokens.extend(tokens)

    def reuse(self, tokens: Sequence[int]) -> int:
        """Keep the longest cached prefix of ``tokens``, leaving one token to compute; its length."""
        keep = 0
        for cached, new in zip(self.tokens, tokens[: len(tokens) - 1], strict=False):
            if cached != new:
                break
            keep += 1
        del self.tokens[keep:]
        return keep

    def free(self) -> None:
        """Release the buffers (the cache cannot be used afterwards)."""
        self._keys.clear()
        self._values.clear()
        self.tokens.clear()
