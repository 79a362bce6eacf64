"""Models on accelerate_lab's tensor ops: BERT, ViT, Whisper and CLIP from real weight files.

>>> from accelerate_lab.models import BERT
>>> BERT.from_pretrained().embed("hello").shape  # doctest: +SKIP
(1, 384)
"""

from accelerate_lab.models.bert import BERT
from accelerate_lab.models.errors import (
    ModelError,
    ModelNotFoundError,
    WeightsCorruptError,
    WeightsShapeError,
    WrongArchitectureError,
)

__all__ = [
    "BERT",
    "ModelError",
    "ModelNotFoundError",
    "WeightsCorruptError",
    "WeightsShapeError",
    "WrongArchitectureError",
]
