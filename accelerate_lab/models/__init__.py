"""Models on accelerate_lab's tensor ops: BERT, ViT, Whisper and CLIP from real weight files.

>>> from accelerate_lab.models import BERT
>>> BERT.from_pretrained().embed("hello").shape  # doctest: +SKIP
(1, 384)
"""

from accelerate_lab.models.audio import load_audio
from accelerate_lab.models.bert import BERT
from accelerate_lab.models.clip import CLIP
from accelerate_lab.models.errors import (
    InputDecodeError,
    ModelError,
    ModelNotFoundError,
    PrecisionUnsupportedError,
    WeightsCorruptError,
    WeightsShapeError,
    WrongArchitectureError,
)
from accelerate_lab.models.images import load_image
from accelerate_lab.models.vit import ViT
from accelerate_lab.models.whisper import Whisper, log_mel_spectrogram

__all__ = [
    "BERT",
    "CLIP",
    "InputDecodeError",
    "ModelError",
    "ModelNotFoundError",
    "PrecisionUnsupportedError",
    "ViT",
    "WeightsCorruptError",
    "WeightsShapeError",
    "Whisper",
    "WrongArchitectureError",
    "load_audio",
    "load_image",
    "log_mel_spectrogram",
]
