"""CTranslate2's Whisper variables under transformers' names, so one loader serves both formats.

CTranslate2 fuses the self-attention query/key/value (``linear_0``) and the cross-attention
key/value (``linear_1``); this adapter splits them back (views, no copies) into
``WhisperForConditionalGeneration``'s ``q_proj``/``k_proj``/``v_proj``. The key projection has no
bias in Whisper; CTranslate2 stores zeros there, which are dropped.

>>> state = CTranslate2WhisperState(CTranslate2File(folder / "model.bin"))  # doctest: +SKIP
>>> state.get("model.decoder.layers.0.self_attn.k_proj.weight").shape  # doctest: +SKIP
(384, 384)
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from accelerate_lab.models.ctranslate2 import CTranslate2File
from accelerate_lab.models.errors import WrongArchitectureError

__all__ = ["CTranslate2WhisperState"]

_LAYER = re.compile(r"layer_(\d+)/")
_GELU = 3  # CTranslate2's ActivationType::GELU (exact erf form)
_NORM = {"gamma": "weight", "beta": "bias"}


class CTranslate2WhisperState:
    """A `StateDict` view of a CTranslate2 Whisper ``model.bin`` with transformers' tensor names."""

    def __init__(self, file: CTranslate2File) -> None:
        if file.spec != "WhisperSpec":
            raise WrongArchitectureError(f"{file.path} holds a CTranslate2 {file.spec}, not a WhisperSpec")
        self.file = file
        self._map: dict[str, tuple[str, int, int]] = {}  # HF name -> (CT2 name, part, parts)
        for name in file.names():
            self._add(name)

    def _split(self, hf_prefix: str, ct2: str, parts: list[str]) -> None:
        for i, proj in enumerate(parts):
            for kind in ("weight", "bias"):
                if not (proj == "k_proj" and kind == "bias"):
                    self._map[f"{hf_prefix}.{proj}.{kind}"] = (f"{ct2}/{kind}", i, len(parts))

    def _add(self, name: str) -> None:
        stack, _, rest = name.partition("/")
        if not name.endswith(("/weight", "/bias", "/gamma", "/beta", "/encodings")):
            return  # scalar settings (num_heads, activation, ...) are read by config()
        hf = f"model.{stack}"
        numbered = _LAYER.match(rest)
        if numbered:
            hf, rest = f"{hf}.layers.{numbered[1]}", rest[numbered.end() :]
        module, _, leaf = rest.rpartition("/")
        kind = _NORM.get(leaf, leaf)
        simple = {
            "self_attention/layer_norm": "self_attn_layer_norm",
            "self_attention/linear_1": "self_attn.out_proj",
            "attention/layer_norm": "encoder_attn_layer_norm",
            "attention/linear_0": "encoder_attn.q_proj",
            "attention/linear_2": "encoder_attn.out_proj",
            "ffn/layer_norm": "final_layer_norm",
            "ffn/linear_0": "fc1",
            "ffn/linear_1": "fc2",
            "layer_norm": "layer_norm",
            "conv1": "conv1",
            "conv2": "conv2",
            "embeddings": "embed_tokens",
            "position_encodings": "embed_positions",
        }
        if module == "self_attention/linear_0":
            if kind == "weight":
                self._split(f"{hf}.self_attn", name.rpartition("/")[0], ["q_proj", "k_proj", "v_proj"])
        elif module == "attention/linear_1":
            if kind == "weight":
                self._split(f"{hf}.encoder_attn", name.rpartition("/")[0], ["k_proj", "v_proj"])
        elif module == "projection":
            self._map["proj_out.weight"] = (name, 0, 1)
        elif module in simple:
            self._map[f"{hf}.{simple[module]}.{'weight' if kind == 'encodings' else kind}"] = (name, 0, 1)

    def names(self) -> list[str]:
        return list(self._map)

    def get(self, name: str) -> np.ndarray:
        source, part, parts = self._map[name]
        array = self.file.get(source)
        size = array.shape[0] // parts
        return array[part * size : (part + 1) * size] if parts > 1 else array

    def config(self) -> dict[str, Any]:
        """transformers-style sizes read off the tensors and CTranslate2's scalar settings."""
        f = self.file
        flags = {
            key: int(f.get(f"decoder/{key}"))
            for key in ("activation", "pre_norm", "alibi", "scale_embeddings")
        }
        if flags != {"activation": _GELU, "pre_norm": 1, "alibi": 0, "scale_embeddings": 0}:
            raise WrongArchitectureError(f"{f.path}: decoder settings {flags} are not Whisper's")
        vocab, d_model = f.get("decoder/embeddings/weight").shape

        def count(stack: str) -> int:
            return len({m[1] for n in f.names() if (m := _LAYER.match(n.removeprefix(f"{stack}/")))})

        return {
            "model_type": "whisper",
            "vocab_size": vocab,
            "d_model": d_model,
            "num_mel_bins": f.get("encoder/conv1/weight").shape[1],
            "encoder_layers": count("encoder"),
            "decoder_layers": count("decoder"),
            "encoder_attention_heads": int(f.get("encoder/num_heads")),
            "decoder_attention_heads": int(f.get("decoder/num_heads")),
            "encoder_ffn_dim": f.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
            "decoder_ffn_dim": f.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
            "max_source_positions": f.get("encoder/position_encodings/encodings").shape[0],
            "max_target_positions": f.get("decoder/position_encodings/encodings").shape[0],
        }
