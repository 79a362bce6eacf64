"""Whisper's encoder (two convolutions, then the shared encoder layer) and decoder with a key/value cache.

Tensor names are transformers' (``WhisperModel`` under ``model.``); CTranslate2 files are read
through `CTranslate2WhisperState`, so both formats build the same network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accelerate_lab.models.layers import (
    MLP,
    EncoderLayer,
    EncoderSpec,
    LayerNames,
    LayerNorm,
    Linear,
    load_layers,
    merge_heads,
    run_layers,
    split_heads,
)
from accelerate_lab.models.weights import Weights
from accelerate_lab.tensor import Tensor, ops

__all__ = ["Decoder", "DecoderCache", "Encoder", "load_decoder", "load_encoder"]

_ENCODER_LAYER = LayerNames(
    query="self_attn.q_proj",
    key="self_attn.k_proj",
    value="self_attn.v_proj",
    out="self_attn.out_proj",
    attention_norm="self_attn_layer_norm",
    up="fc1",
    down="fc2",
    mlp_norm="final_layer_norm",
)
_EPS = 1e-5


@dataclass(frozen=True)
class Encoder:
    """Log-mel ``(B, 80, 3000)`` -> hidden states ``(B, 1500, D)``."""

    conv1: tuple[Tensor, Tensor]
    conv2: tuple[Tensor, Tensor]
    positions: Tensor
    layers: list[EncoderLayer]
    norm: LayerNorm

    def __call__(self, features: Tensor) -> Tensor:
        x = ops.gelu(ops.conv1d(features, *self.conv1, padding=1))
        x = ops.gelu(ops.conv1d(x, *self.conv2, stride=2, padding=1))
        x = ops.add(ops.transpose(x, (0, 2, 1)), self.positions[: x.shape[-1]])
        return self.norm(run_layers(self.layers, x))


@dataclass
class DecoderCache:
    """Per-layer self-attention keys/values so far, and the cross-attention keys/values of the audio."""

    cross: list[tuple[Tensor, Tensor]]
    past: list[tuple[Tensor, Tensor]] = field(default_factory=list)

    @property
    def length(self) -> int:
        return self.past[0][0].shape[2] if self.past else 0


@dataclass(frozen=True)
class DecoderLayer:
    self_qkv: Linear
    self_out: Linear
    self_norm: LayerNorm
    cross_q: Linear
    cross_kv: Linear
    cross_out: Linear
    cross_norm: LayerNorm
    mlp: MLP
    mlp_norm: LayerNorm
    heads: int

    def cross_keys_values(self, encoded: Tensor) -> tuple[Tensor, Tensor]:
        kv = self.cross_kv(encoded)
        width = kv.shape[-1] // 2
        return split_heads(kv[..., :width], self.heads), split_heads(kv[..., width:], self.heads)

    def __call__(
        self, x: Tensor, cross: tuple[Tensor, Tensor], past: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        width = x.shape[-1]
        qkv = self.self_qkv(self.self_norm(x))
        q, k, v = (split_heads(qkv[..., i * width : (i + 1) * width], self.heads) for i in range(3))
        if past is not None:
            k, v = ops.concat([past[0], k], 2), ops.concat([past[1], v], 2)
        # new tokens see every cached one; several new tokens at once only start a sequence (no past)
        attended = ops.scaled_dot_product_attention(q, k, v, is_causal=past is None and q.shape[2] > 1)
        x = self.self_out(merge_heads(attended), residual=x)
        q = split_heads(self.cross_q(self.cross_norm(x)), self.heads)
        x = self.cross_out(merge_heads(ops.scaled_dot_product_attention(q, *cross)), residual=x)
        return self.mlp(self.mlp_norm(x), residual=x), (k, v)


@dataclass(frozen=True)
class Decoder:
    """Token ids ``(B, T)`` and the audio's cache -> logits ``(B, T, vocab)``, extending the cache."""

    tokens: Tensor
    positions: Tensor
    layers: list[DecoderLayer]
    norm: LayerNorm

    def start(self, encoded: Tensor) -> DecoderCache:
        return DecoderCache([layer.cross_keys_values(encoded) for layer in self.layers])

    def __call__(self, ids: Tensor, cache: DecoderCache) -> Tensor:
        start = cache.length
        x = ops.add(ops.embedding(ids, self.tokens), self.positions[start : start + ids.shape[-1]])
        pasts: list[tuple[Tensor, Tensor] | None] = list(cache.past) or [None] * len(self.layers)
        new_past = []
        for layer, cross, past in zip(self.layers, cache.cross, pasts, strict=True):
            x, kv = layer(x, cross, past)
            new_past.append(kv)
        cache.past = new_past
        hidden = self.norm(x)
        logits = ops.matmul(ops.reshape(hidden, (-1, hidden.shape[-1])), ops.transpose(self.tokens))
        return ops.reshape(logits, (*hidden.shape[:-1], -1))


def _spec(config: dict[str, Any], stack: str) -> EncoderSpec:
    return EncoderSpec(
        hidden=int(config["d_model"]),
        heads=int(config[f"{stack}_attention_heads"]),
        intermediate=int(config[f"{stack}_ffn_dim"]),
        eps=_EPS,
        act=str(config.get("activation_function", "gelu")),
        pre_norm=True,
    )


def load_encoder(w: Weights, config: dict[str, Any]) -> Encoder:
    spec = _spec(config, "encoder")
    d, mels = spec.hidden, int(config["num_mel_bins"])
    return Encoder(
        (w.tensor("encoder.conv1.weight", (d, mels, 3)), w.tensor("encoder.conv1.bias", (d,))),
        (w.tensor("encoder.conv2.weight", (d, d, 3)), w.tensor("encoder.conv2.bias", (d,))),
        w.tensor("encoder.embed_positions.weight", (int(config["max_source_positions"]), d)),
        load_layers(w, "encoder.layers", int(config["encoder_layers"]), _ENCODER_LAYER, spec),
        LayerNorm.load(w, "encoder.layer_norm", d, _EPS),
    )


def _decoder_layer(w: Weights, prefix: str, spec: EncoderSpec) -> DecoderLayer:
    d = spec.hidden
    attn, cross = f"{prefix}.self_attn", f"{prefix}.encoder_attn"
    return DecoderLayer(
        Linear.fused(w, [f"{attn}.q_proj", f"{attn}.k_proj", f"{attn}.v_proj"], d, d),
        Linear.load(w, f"{attn}.out_proj", d, d),
        LayerNorm.load(w, f"{prefix}.self_attn_layer_norm", d, _EPS),
        Linear.load(w, f"{cross}.q_proj", d, d),
        Linear.fused(w, [f"{cross}.k_proj", f"{cross}.v_proj"], d, d),
        Linear.load(w, f"{cross}.out_proj", d, d),
        LayerNorm.load(w, f"{prefix}.encoder_attn_layer_norm", d, _EPS),
        MLP(
            Linear.load(w, f"{prefix}.fc1", spec.intermediate, d),
            Linear.load(w, f"{prefix}.fc2", d, spec.intermediate),
            spec.act,
        ),
        LayerNorm.load(w, f"{prefix}.final_layer_norm", d, _EPS),
        spec.heads,
    )


def load_decoder(w: Weights, config: dict[str, Any]) -> Decoder:
    spec = _spec(config, "decoder")
    d = spec.hidden
    return Decoder(
        w.tensor("decoder.embed_tokens.weight", (int(config["vocab_size"]), d)),
        w.tensor("decoder.embed_positions.weight", (int(config["max_target_positions"]), d)),
        [_decoder_layer(w, f"decoder.layers.{i}", spec) for i in range(int(config["decoder_layers"]))],
        LayerNorm.load(w, "decoder.layer_norm", d, _EPS),
    )
