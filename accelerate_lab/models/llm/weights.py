"""A llama model's weights from a GGUF file onto a device: GGUF's packed blocks, or float32.

Each linear layer is a `Projection`. It keeps GGUF's packed ``Q4_1``/``Q8_0`` blocks (about 0.6 or
1.1 bytes per weight) and runs the ``matmul_q4_1``/``matmul_q8_0`` kernels, which decode them inside
the product; only on a cpu without the compiled kernels (`accelerate_lab.hal.cpu_gguf`) is it
float32, stored transposed ``(in, out)`` and contiguous, so ``x @ w`` is one BLAS call. Projections
that read the same input are joined (query, key and value; gate and up) into one product. The
output head reuses the embedding table when the file ties them; with packed weights the embedding
rows of a step's tokens are decoded on the host, so no device holds the table in float32. Loading
goes through `accelerate_lab.models.weights.Weights`, so names and shapes are checked, a progress
bar ticks, and with a `TensorSharingManager` every weight is registered as
``"<model name>/<tensor name>"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from accelerate_lab.hal import cpu_gguf
from accelerate_lab.hal.device import Device
from accelerate_lab.hal.gguf_quant import BLOCK_BYTES, decode_blocks, pack_rows
from accelerate_lab.models.errors import WeightsShapeError
from accelerate_lab.models.llm.config import LlamaConfig
from accelerate_lab.models.llm.gguf_file import GGUFFile
from accelerate_lab.models.llm.quant import dequantize, packed_rows
from accelerate_lab.models.weights import Weights
from accelerate_lab.tensor import Tensor, ops, tensor
from accelerate_lab.tensor.ops.dispatch import apply

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["Embedding", "GGUFStateDict", "LayerWeights", "LlamaWeights", "Projection", "load_weights"]


class GGUFStateDict:
    """The tensors of a GGUF file as float32 arrays in numpy order, dequantized when asked for."""

    def __init__(self, file: GGUFFile) -> None:
        self.file = file

    def names(self) -> list[str]:
        return self.file.tensor_names()

    def get(self, name: str) -> np.ndarray:
        t = self.file.tensor(name)
        return dequantize(t.data, t.qtype, t.shape)

    def blocks(self, name: str, shape: tuple[int, int]) -> tuple[str, np.ndarray] | None:
        """``name``'s block format and its packed ``(rows, blocks, block bytes)`` bytes (memory-mapped);
        None when it is not in a block format. `WeightsShapeError` when it is not ``shape``."""
        t = self.file.tensor(name)
        if t.qtype not in BLOCK_BYTES:
            return None
        if t.shape != shape:
            raise WeightsShapeError(
                f"tensor {name!r} of {self.file.path.name} has shape {t.shape}, but its metadata implies "
                f"{shape}: the file is inconsistent"
            )
        return t.qtype, packed_rows(t.data, t.qtype, t.shape)


@dataclass(frozen=True)
class Projection:
    """A linear layer without bias, ``x @ W.T`` for the ``(out, in)`` weight ``W``: float32 held as
    ``(in, out)`` (``kernel`` None), or GGUF blocks packed for the ``kernel`` (``matmul_q4_1``, ...)."""

    weight: Tensor
    kernel: str | None = None

    def __call__(self, x: Tensor) -> Tensor:
        if self.kernel is None:
            return ops.matmul(x, self.weight)
        return apply(self.kernel, (x, self.weight))


@dataclass(frozen=True, eq=False)
class Embedding:
    """Token ids to rows of the ``(vocab, hidden)`` table: a float32 ``table`` on the device, or the
    file's packed ``blocks`` (``(vocab, blocks, block bytes)``, format ``qtype``) decoded on the host for
    just the ids asked."""

    device: Device
    table: Tensor | None = None
    blocks: np.ndarray | None = None
    qtype: str = ""

    def __call__(self, ids: Sequence[int]) -> Tensor:
        picked = np.asarray(ids, np.int64)
        if self.table is not None:
            return ops.embedding(tensor(picked, device=self.device), self.table)
        assert self.blocks is not None
        rows = self.blocks[picked]
        values = decode_blocks(rows.reshape(-1, rows.shape[-1]), self.qtype).reshape(len(picked), -1)
        return tensor(values, device=self.device)


@dataclass(frozen=True)
class LayerWeights:
    """One transformer block."""

    attn_norm: Tensor
    qkv: Projection
    attn_out: Projection
    ffn_norm: Tensor
    gate_up: Projection
    down: Projection


@dataclass(frozen=True)
class LlamaWeights:
    embedding: Embedding
    layers: tuple[LayerWeights, ...]
    output_norm: Tensor
    output: Projection  # hidden -> vocab


class _Loader:
    """Uploads one file's projections, packed or as float32."""

    def __init__(self, w: Weights, state: GGUFStateDict, packed: bool) -> None:
        self.w = w
        self.state = state
        self.packed = packed

    def packed_parts(self, names: list[tuple[str, tuple[int, int]]]) -> tuple[str, np.ndarray] | None:
        """The row blocks of ``names`` stacked as one ``(sum out_i, bytes)`` array when they share a
        block format (and packing is on), else None."""
        if not self.packed or not all(self.w.has(name) for name, _ in names):
            return None
        found = [part for name, shape in names if (part := self.state.blocks(name, shape)) is not None]
        kinds = {qtype for qtype, _ in found}
        if len(found) != len(names) or len(kinds) != 1:
            return None
        return kinds.pop(), np.concatenate([blocks.reshape(blocks.shape[0], -1) for _, blocks in found])

    def projection(self, names: list[tuple[str, tuple[int, int]]], stored_as: str) -> Projection:
        """Row blocks ``(out_i, in)`` joined into one projection to ``sum out_i`` features."""
        packed = self.packed_parts(names)
        if packed is not None:
            qtype, rows = packed
            return Projection(
                self.w.upload(pack_rows(rows), f"{stored_as}.{qtype}"), f"matmul_{qtype.lower()}"
            )
        stacked = np.concatenate([self.w.array(name, shape) for name, shape in names])
        return Projection(self.w.upload(np.ascontiguousarray(stacked.T), f"{stored_as}.T"))

    def layer(self, c: LlamaConfig, i: int) -> LayerWeights:
        d, f, kv = c.hidden_size, c.intermediate_size, c.num_kv_heads * c.head_dim
        p = f"blk.{i}."
        qkv = [(p + "attn_q.weight", (d, d)), (p + "attn_k.weight", (kv, d)), (p + "attn_v.weight", (kv, d))]
        return LayerWeights(
            attn_norm=self.w.tensor(p + "attn_norm.weight", (d,)),
            qkv=self.projection(qkv, p + "attn_qkv.weight"),
            attn_out=self.projection([(p + "attn_output.weight", (d, d))], p + "attn_output.weight"),
            ffn_norm=self.w.tensor(p + "ffn_norm.weight", (d,)),
            gate_up=self.projection(
                [(p + "ffn_gate.weight", (f, d)), (p + "ffn_up.weight", (f, d))], p + "ffn_gate_up.weight"
            ),
            down=self.projection([(p + "ffn_down.weight", (d, f))], p + "ffn_down.weight"),
        )


def load_weights(
    file: GGUFFile,
    config: LlamaConfig,
    device: str | Device,
    model_name: str,
    sharing: TensorSharingManager | None = None,
    packed: bool | None = None,
) -> LlamaWeights:
    """Every weight of ``file`` on ``device``: ``packed`` (default: yes, but on a cpu without the compiled
    kernels, where numpy's float32 BLAS is faster) keeps the linear layers' GGUF blocks, else they take
    4 bytes a weight."""
    state = GGUFStateDict(file)
    with Weights(state, device=device, model_name=model_name, sharing=sharing) as w:
        if packed is None:
            packed = w.device.name != "cpu" or cpu_gguf.compiled()
        load = _Loader(w, state, packed)
        table = (config.vocab_size, config.hidden_size)
        blocks = state.blocks("token_embd.weight", table) if load.packed else None
        if blocks is None:
            embedding = Embedding(w.device, table=w.tensor("token_embd.weight", table))
        else:
            embedding = Embedding(w.device, blocks=blocks[1], qtype=blocks[0])
        layers = tuple(load.layer(config, i) for i in range(config.num_layers))
        output_norm = w.tensor("output_norm.weight", (config.hidden_size,))
        if w.has("output.weight"):
            output = load.projection([("output.weight", table)], "output.weight")
        elif embedding.table is not None:  # tied: the head is the table's transpose (a view on the cpu)
            output = Projection(ops.transpose(embedding.table))
        else:
            output = load.projection([("token_embd.weight", table)], "token_embd.weight")
    return LlamaWeights(embedding, layers, output_norm, output)
