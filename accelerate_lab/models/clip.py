"""CLIP: text and image embeddings in one space, and zero-shot classification, from Hugging Face weights.

>>> from accelerate_lab.models import CLIP
>>> clip = CLIP.from_pretrained("openai/clip-vit-base-patch32")        # doctest: +SKIP
>>> clip.zero_shot("cat.jpg", ["a cat", "a dog"])                      # doctest: +SKIP
[('a cat', 0.99), ('a dog', 0.01)]
>>> await clip.zero_shot_async("cat.jpg", ["a cat", "a dog"])  # in a notebook  # doctest: +SKIP
[('a cat', 0.99), ('a dog', 0.01)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.base import (
    ArrayLike,
    PretrainedModel,
    Steps,
    as_input,
    fetched,
    float32,
    model_name,
    open_weights,
    read_config,
    run_steps,
    run_steps_async,
)
from accelerate_lab.models.errors import ModelNotFoundError
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
    padding_mask,
    run_layers,
)
from accelerate_lab.models.precision import Precision, float_dtype
from accelerate_lab.models.text import TextTokenizer, require_tokenizer
from accelerate_lab.models.weights import Weights, open_safetensors
from accelerate_lab.tensor import Tensor, no_grad, ops

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["CLIP"]

_LAYER = LayerNames(
    query="self_attn.q_proj",
    key="self_attn.k_proj",
    value="self_attn.v_proj",
    out="self_attn.out_proj",
    attention_norm="layer_norm1",
    up="mlp.fc1",
    down="mlp.fc2",
    mlp_norm="layer_norm2",
)
_LEGACY_EOS = 2  # old CLIP configs name eos 2 and mean "the highest id", as transformers does


def _layers(w: Weights, prefix: str, config: dict[str, Any]) -> list[EncoderLayer]:
    spec = EncoderSpec.from_config(config, default_eps=1e-5, default_act="quick_gelu", pre_norm=True)
    return load_layers(w, f"{prefix}.encoder.layers", int(config["num_hidden_layers"]), _LAYER, spec)


@dataclass(frozen=True)
class _TextTower:
    tokens: Tensor
    positions: Tensor
    layers: list[EncoderLayer]
    norm: LayerNorm
    projection: Linear
    eos: int

    def __call__(self, ids: np.ndarray, mask: Tensor | None, device: Device) -> Tensor:
        x = ops.add(
            ops.embedding(as_input(ids, device, "int32"), self.tokens), self.positions[: ids.shape[1]]
        )
        hidden = self.norm(
            run_layers(self.layers, x, None if mask is None else padding_mask(mask), is_causal=True)
        )
        ends = ids.argmax(-1) if self.eos == _LEGACY_EOS else (ids == self.eos).argmax(-1)
        rows = as_input(np.arange(ids.shape[0]) * ids.shape[1] + ends, device, "int32")
        pooled = ops.embedding(rows, ops.reshape(hidden, (-1, hidden.shape[-1])))
        return self.projection(pooled)


@dataclass(frozen=True)
class _VisionTower:
    embeddings: PatchEmbedding
    pre_norm: LayerNorm
    layers: list[EncoderLayer]
    post_norm: LayerNorm
    projection: Linear

    def __call__(self, pixels: Tensor) -> Tensor:
        hidden = run_layers(self.layers, self.pre_norm(self.embeddings(pixels)))
        return self.projection(self.post_norm(hidden[:, 0]))


def _normalize(x: Tensor) -> Tensor:
    return ops.div(x, ops.sqrt(ops.sum(ops.mul(x, x), -1, keepdims=True)))


class CLIP(PretrainedModel):
    """A CLIP model (``CLIPModel``) with its tokenizer and image preprocessing; ``dtype`` and
    ``weight_bytes`` as for `~accelerate_lab.models.BERT`."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        text: _TextTower,
        vision: _VisionTower,
        logit_scale: Tensor,
        tokenizer: TextTokenizer | None,
        preprocess: ImagePreprocessor | None,
        device: Device,
        dtype: Precision = "fp32",
        weight_bytes: int = 0,
    ) -> None:
        super().__init__(name, config, device, dtype, weight_bytes)
        self.tokenizer, self.preprocess = tokenizer, preprocess
        self._text, self._vision, self._logit_scale = text, vision, logit_scale

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str],
        device: str | Device = "cpu",
        *,
        sharing: TensorSharingManager | None = None,
        dtype: str = "fp32",
    ) -> CLIP:
        """Load from a folder, an installed package or a hub id (no CLIP weights ship offline).

        ``dtype``: ``"fp32"``, ``"fp16"`` (where the device has float16 kernels) or ``"q8"``.
        """
        folder = resolve_model_dir(source)
        config = read_config(folder, "clip")
        tc, vc = config["text_config"], config["vision_config"]
        dt, dv, proj = int(tc["hidden_size"]), int(vc["hidden_size"]), int(config.get("projection_dim", 512))
        with open_weights(open_safetensors(folder), model_name(folder), device, sharing, dtype) as w:
            text = _TextTower(
                w.tensor("text_model.embeddings.token_embedding.weight", (int(tc["vocab_size"]), dt)),
                w.tensor(
                    "text_model.embeddings.position_embedding.weight",
                    (int(tc["max_position_embeddings"]), dt),
                ),
                _layers(w, "text_model", tc),
                LayerNorm.load(w, "text_model.final_layer_norm", dt, float(tc.get("layer_norm_eps", 1e-5))),
                Linear.load(w, "text_projection", proj, dt),
                int(tc.get("eos_token_id", _LEGACY_EOS)),
            )
            patch, channels = int(vc["patch_size"]), int(vc.get("num_channels", 3))
            patches = (int(vc["image_size"]) // patch) ** 2
            eps = float(vc.get("layer_norm_eps", 1e-5))
            vision = _VisionTower(
                PatchEmbedding(
                    w.tensor("vision_model.embeddings.patch_embedding.weight", (dv, channels, patch, patch)),
                    None,
                    w.tensor("vision_model.embeddings.class_embedding", (dv,)),
                    w.tensor("vision_model.embeddings.position_embedding.weight", (patches + 1, dv)),
                    patch,
                ),
                LayerNorm.load(w, "vision_model.pre_layrnorm", dv, eps),
                _layers(w, "vision_model", vc),
                LayerNorm.load(w, "vision_model.post_layernorm", dv, eps),
                Linear.load(w, "visual_projection", proj, dv),
            )
            logit_scale = ops.exp(w.tensor("logit_scale", ()))
        tokenizer = (
            TextTokenizer(
                folder / "tokenizer.json", int(tc["max_position_embeddings"]), pad_token="<|endoftext|>"
            )
            if (folder / "tokenizer.json").is_file()
            else None
        )
        preprocess = (
            ImagePreprocessor.from_pretrained(folder)
            if (folder / "preprocessor_config.json").is_file()
            else None
        )
        return cls(
            model_name(folder),
            config,
            text,
            vision,
            logit_scale,
            tokenizer,
            preprocess,
            w.device,
            w.precision,
            w.nbytes,
        )

    def __call__(
        self, input_ids: ArrayLike, pixel_values: ArrayLike, attention_mask: ArrayLike | None = None
    ) -> dict[str, Tensor]:
        """``CLIPModel``'s forward: normalised ``text_embeds``, ``image_embeds`` and both logit matrices."""
        with no_grad():
            text = _normalize(self._text_features(input_ids, attention_mask))
            image = _normalize(self._vision(as_input(pixel_values, self.device, float_dtype(self.dtype))))
            per_image = ops.mul(ops.matmul(image, ops.transpose(text)), self._logit_scale)
            return {
                "text_embeds": text,
                "image_embeds": image,
                "logits_per_image": per_image,
                "logits_per_text": ops.transpose(per_image),
            }

    def _text_features(self, input_ids: ArrayLike, attention_mask: ArrayLike | None) -> Tensor:
        ids = np.asarray(input_ids.numpy() if isinstance(input_ids, Tensor) else input_ids, dtype=np.int64)
        mask = None if attention_mask is None else as_input(attention_mask, self.device, "int32")
        return self._text(ids, mask, self.device)

    def embed_text(self, texts: str | Sequence[str]) -> np.ndarray:
        """Unit-length text embeddings ``(N, projection_dim)``."""
        return run_steps(fetched(self._text_embeds(texts)))

    async def embed_text_async(self, texts: str | Sequence[str], timeout: float | None = None) -> np.ndarray:
        """`embed_text`, awaiting the result (``browser:webgpu`` models, in a notebook cell)."""
        return await run_steps_async(fetched(self._text_embeds(texts)), timeout)

    def embed_image(self, images: ImageLike | Sequence[ImageLike]) -> np.ndarray:
        """Unit-length image embeddings ``(N, projection_dim)``."""
        return run_steps(fetched(self._image_embeds(images)))

    async def embed_image_async(
        self, images: ImageLike | Sequence[ImageLike], timeout: float | None = None
    ) -> np.ndarray:
        """`embed_image`, awaiting the result (``browser:webgpu`` models, in a notebook cell)."""
        return await run_steps_async(fetched(self._image_embeds(images)), timeout)

    def zero_shot(
        self, image: ImageLike, labels: Sequence[str], template: str = "a photo of a {}."
    ) -> list[tuple[str, float]]:
        """Each label's probability for ``image``, most likely first (labels put into ``template``)."""
        return run_steps(self._zero_shot_steps(image, labels, template))

    async def zero_shot_async(
        self,
        image: ImageLike,
        labels: Sequence[str],
        template: str = "a photo of a {}.",
        timeout: float | None = None,
    ) -> list[tuple[str, float]]:
        """`zero_shot`, awaiting the probabilities: ``await clip.zero_shot_async(image, labels)`` in a
        notebook cell, as a ``browser:webgpu`` model needs (only the probabilities come back)."""
        return await run_steps_async(self._zero_shot_steps(image, labels, template), timeout)

    def _text_embeds(self, texts: str | Sequence[str]) -> Tensor:
        tokens = require_tokenizer(self.tokenizer, self.name)(texts)
        with no_grad():
            return float32(_normalize(self._text_features(tokens.input_ids, tokens.attention_mask)))

    def _image_embeds(self, images: ImageLike | Sequence[ImageLike]) -> Tensor:
        if self.preprocess is None:
            raise ModelNotFoundError(
                f"{self.name} has no preprocessor_config.json: pass pixel_values instead"
            )
        batch: list[ImageLike] = list(images) if isinstance(images, list | tuple) else [images]  # type: ignore[list-item]
        with no_grad():
            pixels = as_input(self.preprocess(batch), self.device, float_dtype(self.dtype))
            return float32(_normalize(self._vision(pixels)))

    def _zero_shot_steps(
        self, image: ImageLike, labels: Sequence[str], template: str
    ) -> Steps[list[tuple[str, float]]]:
        text = self._text_embeds([template.format(label) for label in labels])
        with no_grad():
            scores = ops.matmul(self._image_embeds(image), ops.transpose(text))
            probabilities = ops.softmax(ops.mul(scores, float32(self._logit_scale)), -1)
        probs = (yield probabilities)[0]
        return [(labels[i], float(probs[i])) for i in np.argsort(-probs, kind="stable")]
