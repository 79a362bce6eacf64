"""A llama model's weights from a GGUF file onto a device, dequantized to float32 once.

Projections that read the same input are joined (query, key and value; gate and up) and stored
transposed, ``(in, out)``, so each costs one ``x @ w``; the output head reuses the embedding table
when the file ties them. Loading goes through `accelerate_lab.models.weights.Weights`, so names and
shapes are checked, a progress bar ticks, and with a `TensorSharingManager` every weight is
registered as ``"<model name>/<tensor name>"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.llm.config import LlamaConfig
from accelerate_lab.models.llm.gguf_file import GGUFFile
from accelerate_lab.models.llm.quant import dequantize
from accelerate_lab.models.weights import Weights
from accelerate_lab.tensor import Tensor, ops

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["GGUFStateDict", "LayerWeights", "LlamaWeights", "load_weights"]


class GGUFStateDict:
    """The tensors of a GGUF file as float32 arrays in numpy order, dequantized when asked for."""

    def __init__(self, file: GGUFFile) -> None:
        self.file = file

    def names(self) -> list[str]:
        return self.file.tensor_names()

    def get(self, name: str) -> np.ndarray:
        t = self.file.tensor(name)
        return dequantize(t.data, t.qtype, t.shape)


@dataclass(frozen=True)
class LayerWeights:
    """One transformer block; projections are ``(in, out)``."""

    attn_norm: Tensor
    qkv: Tensor
    attn_out: Tensor
    ffn_norm: Tensor
    gate_up: Tensor
    down: Tensor


@dataclass(frozen=True)
class LlamaWeights:
    embedding: Tensor  # (vocab, hidden)
    layers: tuple[LayerWeights, ...]
    output_norm: Tensor
    output: Tensor  # (hidden, vocab)


def _joined(w: Weights, names: list[tuple[str, tuple[int, int]]], stored_as: str) -> Tensor:
    """Row blocks ``(out_i, in)`` stacked and transposed to one ``(in, sum out_i)`` tensor."""
    stacked = np.concatenate([w.array(name, shape) for name, shape in names])
    return w.upload(np.ascontiguousarray(stacked.T), stored_as)


def _layer(w: Weights, c: LlamaConfig, i: int) -> LayerWeights:
    d, f, kv = c.hidden_size, c.intermediate_size, c.num_kv_heads * c.head_dim
    p = f"blk.{i}."
    return LayerWeights(
        attn_norm=w.tensor(p + "attn_norm.weight", (d,)),
        qkv=_joined(
            w,
            [(p + "attn_q.weight", (d, d)), (p + "attn_k.weight", (kv, d)), (p + "attn_v.weight", (kv, d))],
            p + "attn_qkv.weight.T",
        ),
        attn_out=_joined(w, [(p + "attn_output.weight", (d, d))], p + "attn_output.weight.T"),
        ffn_norm=w.tensor(p + "ffn_norm.weight", (d,)),
        gate_up=_joined(
            w, [(p + "ffn_gate.weight", (f, d)), (p + "ffn_up.weight", (f, d))], p + "ffn_gate_up.weight.T"
        ),
        down=_joined(w, [(p + "ffn_down.weight", (d, f))], p + "ffn_down.weight.T"),
    )


def load_weights(
    file: GGUFFile,
    config: LlamaConfig,
    device: str | Device,
    model_name: str,
    sharing: TensorSharingManager | None = None,
) -> LlamaWeights:
    """Every weight of ``file`` on ``device`` (about 4 bytes per parameter)."""
    with Weights(GGUFStateDict(file), device=device, model_name=model_name, sharing=sharing) as w:
        embedding = w.tensor("token_embd.weight", (config.vocab_size, config.hidden_size))
        layers = tuple(_layer(w, config, i) for i in range(config.num_layers))
        output_norm = w.tensor("output_norm.weight", (config.hidden_size,))
        if w.has("output.weight"):
            output = _joined(
                w, [("output.weight", (config.vocab_size, config.hidden_size))], "output.weight.T"
            )
        else:  # tied: the head is the embedding table's transpose (a view on the cpu)
            output = ops.transpose(embedding)
    return LlamaWeights(embedding, layers, output_norm, output)
