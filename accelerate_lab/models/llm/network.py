"""The llama forward pass on accelerate_lab tensor ops: RMSNorm, RoPE, grouped-query attention, SwiGLU.

Every step is a tensor op, so the same code runs on every device. Attention groups the query heads
that share a key/value head into one batch row, ``(kv_heads, group * length, head_dim)``, so the keys
and values are never repeated; new positions attend to the cache's filled prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.llm.config import LlamaConfig
from accelerate_lab.models.llm.kv_cache import KVCache
from accelerate_lab.models.llm.rotary import Rotary
from accelerate_lab.models.llm.weights import LayerWeights, LlamaWeights
from accelerate_lab.tensor import Tensor, no_grad, ops, tensor

__all__ = ["LlamaNetwork", "rms_norm"]


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last axis."""
    return ops.mul(ops.div(x, ops.sqrt(ops.add(ops.mean(ops.mul(x, x), -1, keepdims=True), eps))), weight)


class LlamaNetwork:
    """The network of a llama model: token ids and a `KVCache` in, next-token logits out."""

    def __init__(self, config: LlamaConfig, weights: LlamaWeights, device: Device) -> None:
        self.config = config
        self.weights = weights
        self.device = device
        self.rotary = Rotary(config.head_dim, config.rope_theta, device)

    def _mask(self, start: int, length: int) -> Tensor | None:
        """Which cached positions each grouped query row may see (None: all, for a single new token)."""
        if length == 1:
            return None
        position = start + np.tile(np.arange(length), self.config.group_size)
        keep = np.arange(start + length)[None, :] <= position[:, None]
        return tensor(keep, device=self.device)

    def _attention(
        self,
        index: int,
        layer: LayerWeights,
        x: Tensor,
        cache: KVCache,
        start: int,
        rope: tuple[Tensor, Tensor],
        mask: Tensor | None,
    ) -> Tensor:
        c = self.config
        length, heads, kv, dim = x.shape[0], c.num_heads, c.num_kv_heads, c.head_dim
        qkv = layer.qkv(x)
        qk = self.rotary.apply(ops.reshape(qkv[:, : (heads + kv) * dim], (length, heads + kv, dim)), *rope)
        q = ops.transpose(ops.reshape(qk[:, :heads], (length, kv, c.group_size, dim)), (1, 2, 0, 3))
        k = ops.transpose(qk[:, heads:], (1, 0, 2))
        v = ops.transpose(ops.reshape(qkv[:, (heads + kv) * dim :], (length, kv, dim)), (1, 0, 2))
        keys, values = cache.write(index, start, k, v)
        out = ops.scaled_dot_product_attention(
            ops.reshape(q, (kv, c.group_size * length, dim)), keys, values, mask
        )
        out = ops.transpose(ops.reshape(out, (kv, c.group_size, length, dim)), (2, 0, 1, 3))
        return layer.attn_out(ops.reshape(out, (length, heads * dim)))

    def _mlp(self, layer: LayerWeights, x: Tensor) -> Tensor:
        f = self.config.intermediate_size
        gate_up = layer.gate_up(x)
        return layer.down(ops.mul(ops.silu(gate_up[:, :f]), gate_up[:, f:]))

    def forward(self, ids: Sequence[int], cache: KVCache) -> Tensor:
        """Logits ``(vocab,)`` for the token after ``ids``, which are appended to ``cache``."""
        eps = self.config.rms_norm_eps
        with no_grad():
            start = cache.reserve(len(ids))
            x = self.weights.embedding(ids)
            rope = self.rotary.tables(start, len(ids))
            mask = self._mask(start, len(ids))
            for index, layer in enumerate(self.weights.layers):
                x = ops.add(
                    x,
                    self._attention(
                        index, layer, rms_norm(x, layer.attn_norm, eps), cache, start, rope, mask
                    ),
                )
                x = ops.add(x, self._mlp(layer, rms_norm(x, layer.ffn_norm, eps)))
            cache.commit(ids)
            last = rms_norm(x[len(ids) - 1 :], self.weights.output_norm, eps)
            return ops.reshape(self.weights.output(last), (self.config.vocab_size,))
