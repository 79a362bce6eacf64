"""ViT image classifiers (``ViTForImageClassification``) from Hugging Face weights.

>>> from accelerate_lab.models import ViT
>>> vit = ViT.from_pretrained("google/vit-base-patch16-224")  # doctest: +SKIP
>>> vit.classify("cat.jpg", top_k=1)                           # doctest: +SKIP
[('tabby, tabby cat', 0.93)]
>>> await vit.classify_async("cat.jpg", top_k=1)  # a browser:webgpu model, in a notebook  # doctest: +SKIP
[('tabby, tabby cat', 0.93)]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

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
    run_steps,
    run_steps_async,
)
from accelerate_lab.models.hub import resolve_model_dir
from accelerate_lab.models.images import ImageLike, ImagePreprocessor
from accelerate_lab.models.layers import (
    EncoderLayer,
    EncoderSpec,
    LayerNames,
    LayerNorm,
    Linear,
    PatchEmbedding,
    load_layers,
    run_layers,
)
from accelerate_lab.models.precision import Precision, float_dtype
from accelerate_lab.models.weights import open_safetensors
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


class ViT(PretrainedModel):
    """A Vision Transformer with its image preprocessing and labels; ``dtype`` and ``weight_bytes`` as
    for `~accelerate_lab.models.BERT`."""

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
        dtype: Precision = "fp32",
        weight_bytes: int = 0,
    ) -> None:
        super().__init__(name, config, device, dtype, weight_bytes)
        self.preprocess = preprocess
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
        dtype: str = "fp32",
    ) -> ViT:
        """Load from a folder, an installed package or a hub id (no ViT weights ship offline).

        ``dtype``: ``"fp32"``, ``"fp16"`` (where the device has float16 kernels) or ``"q8"``.
        """
        folder = resolve_model_dir(source)
        config = read_config(folder, "vit")
        spec = EncoderSpec.from_config(config, default_eps=1e-12, default_act="gelu", pre_norm=True)
        d = spec.hidden
        state = open_safetensors(folder)
        with open_weights(
            state, model_name(folder), device, sharing, dtype, ("vit.", ""), "layernorm.weight"
        ) as w:
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
            layers = load_layers(w, "encoder.layer", int(config["num_hidden_layers"]), _LAYER, spec)
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
            w.precision,
            w.nbytes,
        )

    def __call__(self, pixel_values: ArrayLike) -> dict[str, Tensor]:
        """``last_hidden_state`` ``(B, 1 + patches, D)`` and, with a classifier head, ``logits``."""
        with no_grad():
            x = self._embeddings(as_input(pixel_values, self.device, float_dtype(self.dtype)))
            hidden = self._norm(run_layers(self._layers, x))
            out = {"last_hidden_state": hidden}
            if self._classifier is not None:
                out["logits"] = self._classifier(hidden[:, 0])
            return out

    def classify(self, image: ImageLike, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` most likely labels of one image, with their probabilities."""
        return run_steps(self._classify_steps(image, top_k))

    async def classify_async(
        self, image: ImageLike, top_k: int = 5, timeout: float | None = None
    ) -> list[tuple[str, float]]:
        """`classify`, awaiting the probabilities: ``await vit.classify_async(image)`` in a notebook
        cell, as a ``browser:webgpu`` model needs (only the pixels go there, only the probabilities back)."""
        return await run_steps_async(self._classify_steps(image, top_k), timeout)

    def _classify_steps(self, image: ImageLike, top_k: int) -> Steps[list[tuple[str, float]]]:
        logits = self(self.preprocess([image])).get("logits")
        if logits is None:
            raise ValueError(f"{self.name} has no classifier head: use model(pixel_values) for its features")
        with no_grad():
            probabilities = float32(ops.softmax(logits, -1))
        probs = (yield probabilities)[0]
        return [(self.labels[i], float(probs[i])) for i in np.argsort(-probs, kind="stable")[:top_k]]
