"""ViT image classifiers (``ViTForImageClassification``) from Hugging Face weights.

>>> from accelerate_lab.models import ViT
>>> vit = ViT.from_pretrained("google/vit-base-patch16-224")  # doctest: +SKIP
>>> vit.classify("cat.jpg", top_k=1)                           # doctest: +SKIP
[('tabby, tabby cat', 0.93)]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.base import ArrayLike, as_input, model_name, read_config
from accelerate_lab.models.hub import resolve_model_dir
from accelerate_lab.models.images import ImageLike, ImagePreprocessor
from accelerate_lab.models.layers import (
    EncoderLayer,
    EncoderSpec,
    LayerNames,
    LayerNorm,
    Linear,
    PatchEmbedding,
    run_layers,
)
from accelerate_lab.models.weights import Weights, open_safetensors
from accelerate_lab.tensor import Tensor, no_grad, ops

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["ViT"]

_LAYER = LayerNames(
    query="attention.attention.query",
    key="attention.attention.key",
    value="attention.attention.value",
    out="attention.output.dense",
    attention_norm="layernorm_before",
    up="intermediate.dense",
    down="output.dense",
    mlp_norm="layernorm_after",
)


class ViT:
    """A Vision Transformer with its image preprocessing and labels."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        embeddings: PatchEmbedding,
        layers: list[EncoderLayer],
        norm: LayerNorm,
        classifier: Linear | None,
        preprocess: ImagePreprocessor,
        device: Device,
    ) -> None:
        self.name, self.config, self.device, self.preprocess = name, config, device, preprocess
        self._embeddings, self._layers, self._norm, self._classifier = embeddings, layers, norm, classifier
        labels = config.get("id2label") or {}
        self.labels = [str(labels.get(str(i), f"LABEL_{i}")) for i in range(len(labels))]

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str],
        device: str | Device = "cpu",
        *,
        sharing: TensorSharingManager | None = None,
    ) -> ViT:
        """Load from a folder, an installed package or a hub id (no ViT weights ship offline)."""
        folder = resolve_model_dir(source)
        config = read_config(folder, "vit")
        d = int(config["hidden_size"])
        spec = EncoderSpec(
            hidden=d,
            heads=int(config["num_attention_heads"]),
            intermediate=int(config["intermediate_size"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
            act=str(config.get("hidden_act", "gelu")),
            pre_norm=True,
        )
        with Weights(
            open_safetensors(folder),
            device=device,
            model_name=model_name(folder),
            prefix="vit.",
            sharing=sharing,
        ) as w:
            if not w.has("layernorm.weight"):
                w.prefix = ""
            patch, channels = int(config["patch_size"]), int(config.get("num_channels", 3))
            patches = (int(config["image_size"]) // patch) ** 2
            embeddings = PatchEmbedding(
                w.tensor("embeddings.patch_embeddings.projection.weight", (d, channels, patch, patch)),
                w.tensor("embeddings.patch_embeddings.projection.bias", (d,)),
                ops.reshape(w.tensor("embeddings.cls_token", (1, 1, d)), (d,)),
                ops.reshape(
                    w.tensor("embeddings.position_embeddings", (1, patches + 1, d)), (patches + 1, d)
                ),
                patch,
            )
            layers = [
                EncoderLayer.load(w, f"encoder.layer.{i}", _LAYER, spec)
                for i in range(int(config["num_hidden_layers"]))
            ]
            norm = LayerNorm.load(w, "layernorm", d, spec.eps)
            w.prefix = ""
            labels = len(config.get("id2label") or {})
            classifier = Linear.load(w, "classifier", labels, d) if w.has("classifier.weight") else None
        return cls(
            folder.name,
            config,
            embeddings,
            layers,
            norm,
            classifier,
            ImagePreprocessor.from_pretrained(folder),
            w.device,
        )

    def __call__(self, pixel_values: ArrayLike) -> dict[str, Tensor]:
        """``last_hidden_state`` ``(B, 1 + patches, D)`` and, with a classifier head, ``logits``."""
        with no_grad():
            x = self._embeddings(as_input(pixel_values, self.device, "float32"))
            hidden = self._norm(run_layers(self._layers, x))
            out = {"last_hidden_state": hidden}
            if self._classifier is not None:
                out["logits"] = self._classifier(hidden[:, 0])
            return out

    def classify(self, image: ImageLike, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` most likely labels of one image, with their probabilities."""
        logits = self(self.preprocess([image])).get("logits")
        if logits is None:
            raise ValueError(f"{self.name} has no classifier head: use model(pixel_values) for its features")
        with no_grad():
            probs = ops.softmax(logits, -1).numpy()[0]
        return [(self.labels[i], float(probs[i])) for i in np.argsort(-probs, kind="stable")[:top_k]]
