"""The table of tensor types and the model families that can share them."""

from __future__ import annotations

import pytest

import accelerate_lab as al
from accelerate_lab.sharing import DEFAULT_TENSOR_TYPES, tensor_types
from accelerate_lab.sharing._patterns import model_matches


def test_defaults_are_the_sdk_table() -> None:
    assert al.get_compatible_models_for_tensor("text_embedding") == [
        "bert",
        "t5",
        "llama",
        "bart",
        "roberta",
        "gpt2",
    ]
    assert al.get_compatible_models_for_tensor("vision_embedding") == ["vit", "clip", "detr", "swin", "dino"]
    assert al.get_compatible_models_for_tensor("unknown") == []
    assert tensor_types() == dict(DEFAULT_TENSOR_TYPES)


def test_register_adds_or_replaces_families_and_reset_restores() -> None:
    al.register_tensor_type("text_embedding", ["MiniLM", "bert"])
    assert al.get_compatible_models_for_tensor("text_embedding")[-1] == "minilm"
    al.register_tensor_type("speech_units", ["hubert"], replace=True)
    assert al.get_compatible_models_for_tensor("speech_units") == ["hubert"]
    al.reset_tensor_types()
    assert "speech_units" not in tensor_types()


@pytest.mark.parametrize(
    ("model", "family", "matches"),
    [
        ("bert", "bert", True),
        ("bert-base-uncased", "bert", True),
        ("google/BERT_uncased", "bert", True),
        ("roberta-base", "bert", False),
        ("openai/clip-vit-base-patch32", "vit", True),
        ("whisper_text-small", "whisper_text", True),
        ("tinyllama", "llama", False),
    ],
)
def test_a_model_matches_a_family_named_between_separators(model: str, family: str, matches: bool) -> None:
    assert model_matches(model, family) is matches
