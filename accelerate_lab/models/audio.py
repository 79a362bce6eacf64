"""Audio from files or arrays as mono float32 samples at the rate a model wants.

Files are read with ``soundfile`` (WAV, FLAC, OGG, MP3, ...), channels averaged, and resampled
with a polyphase filter (``scipy.signal.resample_poly``) when the rate differs.

>>> import numpy as np
>>> load_audio(np.zeros(8000, np.float32), sampling_rate=16000).shape
(8000,)
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.models.errors import InputDecodeError, ModelNotFoundError

__all__ = ["AudioLike", "load_audio", "resample"]

AudioLike = str | os.PathLike[str] | np.ndarray


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``samples`` at ``from_rate`` Hz resampled to ``to_rate`` Hz."""
    if from_rate == to_rate:
        return samples
    from scipy.signal import resample_poly

    g = math.gcd(from_rate, to_rate)
    return np.asarray(resample_poly(samples, to_rate // g, from_rate // g), dtype=np.float32)


def load_audio(audio: AudioLike, sampling_rate: int = 16000) -> np.ndarray:
    """Mono float32 samples in ``[-1, 1]`` at ``sampling_rate``.

    An array is taken as already at ``sampling_rate`` (mono ``(n,)`` or ``(n, channels)``); a path is
    decoded and resampled.
    """
    if isinstance(audio, np.ndarray):
        samples, rate = audio.astype(np.float32, copy=False), sampling_rate
    else:
        import soundfile

        path = Path(audio)
        if not path.is_file():
            raise ModelNotFoundError(f"no audio file at {path}")
        try:
            samples, rate = soundfile.read(path, dtype="float32", always_2d=False)
        except soundfile.LibsndfileError as error:
            raise InputDecodeError(f"{path} is not an audio file soundfile can decode ({error})") from error
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    elif samples.ndim != 1:
        raise ShapeError(f"audio must be (samples,) or (samples, channels), got shape {samples.shape}")
    return resample(samples, int(rate), sampling_rate)
