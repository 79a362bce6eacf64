"""Whisper against transformers: real tiny.en (CTranslate2) on espeak-ng speech, and a tiny random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from accelerate_lab.models import Whisper, load_audio
from accelerate_lab.models.ctranslate2 import CTranslate2File
from accelerate_lab.models.whisper.ct2_state import CTranslate2WhisperState
from accelerate_lab.models.whisper.model import prompt_ids
from tests.models.conftest import max_relative_error
from tests.models.transformers_whisper import transformers_tiny_en


@pytest.fixture(scope="module")
def tiny_en(whisper_dir: Path) -> Whisper:
    return Whisper.from_pretrained(whisper_dir)


@pytest.mark.slow
def test_greedy_tokens_equal_transformers_on_espeak_speech(
    tiny_en: Whisper, whisper_dir: Path, speech_wav: Path
) -> None:
    features = tiny_en.log_mel_spectrogram(speech_wav)
    with torch.no_grad():
        expected = transformers_tiny_en(whisper_dir).generate(
            torch.from_numpy(features[None]), do_sample=False
        )
    ours = tiny_en.generate(features[None])
    assert ours == [[t for t in expected[0].tolist() if t < 50256]]
    assert "lazy dog" in tiny_en.transcribe(speech_wav)


@pytest.mark.slow
def test_transcribe_stream_yields_each_30s_window_as_it_finishes(tiny_en: Whisper, speech_wav: Path) -> None:
    clip = load_audio(speech_wav)
    window = np.zeros(30 * 16000, np.float32)
    window[: clip.size] = clip
    stream = tiny_en.transcribe_stream(np.concatenate([window, clip]), max_new_tokens=40)
    first = next(stream)  # available before the second window is decoded
    assert "lazy dog" in first
    assert list(stream) == [first]
    assert tiny_en.transcribe(np.concatenate([window, clip]), max_new_tokens=40) == f"{first} {first}"


def test_ctranslate2_adapter_names_every_transformers_tensor(whisper_dir: Path) -> None:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    state = CTranslate2WhisperState(CTranslate2File(whisper_dir / "model.bin"))
    with torch.device("meta"):
        names = set(WhisperForConditionalGeneration(WhisperConfig(**state.config())).state_dict())
    assert set(state.names()) == names


def test_prompt_is_start_then_no_timestamps_or_with_language_and_task(tiny_en: Whisper) -> None:
    tok = tiny_en.tokenizer
    assert tok is not None
    sot, no_ts = tok.token_id("<|startoftranscript|>"), tok.token_id("<|notimestamps|>")
    assert prompt_ids(tok, multilingual=False) == (sot, no_ts)
    task = (tok.token_id("<|en|>"), tok.token_id("<|transcribe|>"))
    assert prompt_ids(tok, multilingual=True) == (sot, *task, no_ts)


def test_forward_logits_match_transformers_on_a_tiny_random_whisper(
    tiny_whisper_dir: Path, device: str
) -> None:
    from transformers import WhisperForConditionalGeneration

    reference = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).eval()
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 80, 100)).astype(np.float32)
    ids = rng.integers(0, 101, (2, 9))
    with torch.no_grad():
        expected = reference(
            input_features=torch.from_numpy(features), decoder_input_ids=torch.from_numpy(ids)
        )
    out = Whisper.from_pretrained(tiny_whisper_dir, device)(features, ids)
    assert max_relative_error(out["logits"].numpy(), expected.logits.numpy()) < 1e-4
    assert (
        max_relative_error(
            out["encoder_last_hidden_state"].numpy(), expected.encoder_last_hidden_state.numpy()
        )
        < 1e-4
    )
