"""CLIP against transformers on a tiny random model: embeddings, logits, zero-shot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from accelerate_lab.models import CLIP
from tests.models.conftest import max_relative_error

if TYPE_CHECKING:
    from transformers import CLIPModel

TEXTS = ["a photo of a cat", "a dog", "a diagram of a tree"]


@pytest.fixture(scope="module")
def clip(tiny_clip_dir: Path) -> CLIP:
    return CLIP.from_pretrained(tiny_clip_dir)


@pytest.fixture(scope="module")
def reference(tiny_clip_dir: Path) -> CLIPModel:
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(tiny_clip_dir)
    model.eval()
    return model


def _pixels(tiny_clip_dir: Path, picture: np.ndarray) -> np.ndarray:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return np.asarray(
        CLIPImageProcessorPil.from_pretrained(tiny_clip_dir)(picture, return_tensors="np")["pixel_values"]
    )


def test_forward_matches_transformers_with_padded_texts(
    reference: CLIPModel, tiny_clip_dir: Path, picture: np.ndarray, device: str
) -> None:
    clip = CLIP.from_pretrained(tiny_clip_dir, device)
    assert clip.tokenizer is not None
    tokens = clip.tokenizer(TEXTS)
    assert tokens.attention_mask.min() == 0  # the batch has padding
    pixels = _pixels(tiny_clip_dir, picture)
    with torch.no_grad():
        expected = reference(
            input_ids=torch.from_numpy(tokens.input_ids),
            attention_mask=torch.from_numpy(tokens.attention_mask),
            pixel_values=torch.from_numpy(pixels),
        )
    out = clip(tokens.input_ids, pixels, tokens.attention_mask)
    for name in ("text_embeds", "image_embeds", "logits_per_image", "logits_per_text"):
        assert max_relative_error(out[name].numpy(), getattr(expected, name).numpy()) < 1e-4, name


def test_embed_image_preprocesses_like_transformers(
    clip: CLIP, reference: CLIPModel, tiny_clip_dir: Path, picture: np.ndarray
) -> None:
    with torch.no_grad():
        expected = reference.get_image_features(
            pixel_values=torch.from_numpy(_pixels(tiny_clip_dir, picture))
        )
    expected = getattr(expected, "pooler_output", expected)
    expected = (expected / expected.norm(dim=-1, keepdim=True)).numpy()
    assert max_relative_error(clip.embed_image(picture), expected) < 1e-4


def test_zero_shot_probabilities_follow_transformers_logits(
    clip: CLIP, reference: CLIPModel, tiny_clip_dir: Path, picture: np.ndarray
) -> None:
    labels = ["cat", "dog", "tree"]
    assert clip.tokenizer is not None
    tokens = clip.tokenizer([f"a photo of a {label}." for label in labels])
    with torch.no_grad():
        logits = reference(
            input_ids=torch.from_numpy(tokens.input_ids),
            attention_mask=torch.from_numpy(tokens.attention_mask),
            pixel_values=torch.from_numpy(_pixels(tiny_clip_dir, picture)),
        ).logits_per_image
    probs = logits.softmax(-1)[0].numpy()
    ranked = clip.zero_shot(picture, labels)
    assert [label for label, _ in ranked] == [labels[i] for i in np.argsort(-probs)]
    np.testing.assert_allclose(sorted(p for _, p in ranked), sorted(probs), rtol=1e-4)
