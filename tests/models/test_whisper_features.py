"""Whisper's log-mel front end against transformers' WhisperFeatureExtractor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelerate_lab.errors import ShapeError
from accelerate_lab.models import load_audio, log_mel_spectrogram


@pytest.fixture(scope="module")
def extractor() -> object:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor()


def _reference(extractor: object, samples: np.ndarray) -> np.ndarray:
    out = extractor(samples, sampling_rate=16000, return_tensors="np")  # type: ignore[operator]
    return np.asarray(out.input_features[0])


@pytest.mark.parametrize("seconds", [0.5, 7.0, 30.0])
def test_log_mel_matches_the_feature_extractor_on_noise(extractor: object, seconds: float) -> None:
    samples = (np.random.default_rng(1).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
    np.testing.assert_allclose(log_mel_spectrogram(samples), _reference(extractor, samples), atol=1e-4)


def test_log_mel_matches_the_feature_extractor_on_speech(extractor: object, speech_wav: Path) -> None:
    samples = load_audio(speech_wav)
    np.testing.assert_allclose(log_mel_spectrogram(samples), _reference(extractor, samples), atol=1e-4)


def test_log_mel_refuses_more_than_30_seconds_and_names_transcribe() -> None:
    with pytest.raises(ShapeError, match="transcribe"):
        log_mel_spectrogram(np.zeros(16000 * 31, np.float32))


def test_load_audio_averages_channels_and_resamples(tmp_path: Path) -> None:
    import soundfile
    from scipy.signal import resample_poly

    rng = np.random.default_rng(2)
    stereo = (rng.standard_normal((8000, 2)) * 0.1).astype(np.float32)
    soundfile.write(tmp_path / "stereo.wav", stereo, 8000, subtype="FLOAT")
    expected = resample_poly(stereo.mean(axis=1), 2, 1)
    np.testing.assert_allclose(load_audio(tmp_path / "stereo.wav"), expected, atol=1e-6)
