"""transformers' Whisper with the shipped tiny.en's CTranslate2 weights: the reference that the Whisper
tests and bench/ compare ours against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from transformers import WhisperForConditionalGeneration


def transformers_tiny_en(whisper_dir: Path) -> WhisperForConditionalGeneration:
    """transformers' Whisper with the CTranslate2 weights in ``whisper_dir``, decoding as its config says."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    from accelerate_lab.models.ctranslate2 import CTranslate2File
    from accelerate_lab.models.whisper.ct2_state import CTranslate2WhisperState

    state = CTranslate2WhisperState(CTranslate2File(whisper_dir / "model.bin"))
    model = WhisperForConditionalGeneration(WhisperConfig(**state.config()))
    model.eval()
    model.load_state_dict(
        {n: torch.tensor(np.asarray(state.get(n), np.float32)) for n in state.names()}, strict=True
    )
    ct2 = json.loads((whisper_dir / "config.json").read_text())
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50257,
        eos_token_id=50256,
        pad_token_id=50256,
        max_length=448,
        no_timestamps_token_id=50362,
        is_multilingual=False,
        suppress_tokens=ct2["suppress_ids"],
        begin_suppress_tokens=ct2["suppress_ids_begin"],
    )
    return model
