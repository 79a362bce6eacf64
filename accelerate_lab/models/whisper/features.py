"""Whisper's front end in numpy: 30 s of 16 kHz audio to an 80-bin log-mel spectrogram ``(80, 3000)``.

The same steps as OpenAI's ``whisper.audio`` and transformers' ``WhisperFeatureExtractor``: zero-pad
to 30 s, a centred 400-point STFT (periodic Hann window, hop 160, reflect padding), power spectrum,
Slaney-normalised mel filters (0-8 kHz), ``log10``, a floor 8 below the peak, then ``(x + 4) / 4``.

>>> import numpy as np
>>> log_mel_spectrogram(np.zeros(16000, np.float32)).shape
(80, 3000)
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelerate_lab.errors import ShapeError

__all__ = ["CHUNK_SAMPLES", "SAMPLE_RATE", "log_mel_spectrogram", "mel_filters"]

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
CHUNK_SAMPLES = 30 * SAMPLE_RATE

_F_SP = 200.0 / 3  # Slaney's mel scale: linear below 1 kHz, logarithmic above
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_part = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log_part, _F_SP * mel)


@functools.cache
def mel_filters(n_mels: int = 80) -> np.ndarray:
    """``(n_mels, 201)`` triangular filters, Slaney-normalised, as librosa's ``filters.mel`` (float64)."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array(SAMPLE_RATE / 2))), n_mels + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)[:, None]
    rising, falling = -ramps[:-2] / widths[:-1], ramps[2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    filters.setflags(write=False)
    return filters


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """``(n_mels, 3000)`` float32 features of up to 30 s of mono 16 kHz audio (shorter is zero-padded)."""
    samples = np.asarray(audio, dtype=np.float64)
    if samples.ndim != 1:
        raise ShapeError(
            f"audio must be mono, 1-D samples; got shape {samples.shape}: average the channels first"
        )
    if samples.size > CHUNK_SAMPLES:
        raise ShapeError(
            f"{samples.size} samples are more than Whisper's 30 s window ({CHUNK_SAMPLES}); "
            "use Whisper.transcribe, which splits long audio into windows"
        )
    padded = np.pad(samples, (0, CHUNK_SAMPLES - samples.size))
    centred = np.pad(padded, N_FFT // 2, mode="reflect")
    frames = sliding_window_view(centred, N_FFT)[::HOP]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = mel_filters(n_mels) @ power[:-1].T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    out: np.ndarray = ((log_spec + 4.0) / 4.0).astype(np.float32)
    return out
