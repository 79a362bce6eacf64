"""Whisper: log-mel front end, encoder-decoder, greedy transcription (transformers or CTranslate2 weights)."""

from accelerate_lab.models.whisper.features import log_mel_spectrogram
from accelerate_lab.models.whisper.model import Whisper

__all__ = ["Whisper", "log_mel_spectrogram"]
