"""ViT against transformers on a tiny random classifier: preprocessing, logits, classify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from accelerate_lab.models import ViT
from tests.models.conftest import max_relative_error


def test_preprocessing_matches_the_transformers_image_processor(
    tiny_vit_dir: Path, picture: np.ndarray
) -> None:
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    expected = ViTImageProcessorPil.from_pretrained(tiny_vit_dir)(picture, return_tensors="np")[
        "pixel_values"
    ]
    np.testing.assert_allclose(ViT.from_pretrained(tiny_vit_dir).preprocess([picture]), expected, atol=1e-6)


def test_logits_match_transformers(tiny_vit_dir: Path, device: str) -> None:
    from transformers import ViTForImageClassification

    pixels = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = (
            ViTForImageClassification.from_pretrained(tiny_vit_dir).eval()(torch.from_numpy(pixels)).logits
        )
    assert (
        max_relative_error(
            ViT.from_pretrained(tiny_vit_dir, device)(pixels)["logits"].numpy(), expected.numpy()
        )
        < 1e-4
    )


def test_classify_ranks_config_labels_by_transformers_probabilities(
    tiny_vit_dir: Path, picture: np.ndarray, tmp_path: Path
) -> None:
    from transformers import ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    pixels = ViTImageProcessorPil.from_pretrained(tiny_vit_dir)(picture, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        probs = (
            ViTForImageClassification.from_pretrained(tiny_vit_dir)
            .eval()(pixels)
            .logits.softmax(-1)[0]
            .numpy()
        )
    Image.fromarray(picture).save(tmp_path / "picture.png")
    top = ViT.from_pretrained(tiny_vit_dir).classify(tmp_path / "picture.png", top_k=3)
    order = np.argsort(-probs)[:3]
    assert [label for label, _ in top] == [f"class {i}" for i in order]
    np.testing.assert_allclose([p for _, p in top], probs[order], rtol=1e-4)
