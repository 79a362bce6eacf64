"""Errors raised while finding, reading and checking model weights; each says what to do next."""

from __future__ import annotations

from accelerate_lab.errors import AccelerateLabError, ShapeError

__all__ = [
    "InputDecodeError",
    "ModelError",
    "ModelNotFoundError",
    "PrecisionUnsupportedError",
    "WeightsCorruptError",
    "WeightsShapeError",
    "WrongArchitectureError",
]


class ModelError(AccelerateLabError):
    """Base of the errors of ``accelerate_lab.models``."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model folder, package, hub id or one of its files is missing."""


class WeightsCorruptError(ModelError):
    """A weights file is truncated or not in the format its name says."""


class WrongArchitectureError(ModelError, ValueError):
    """The weights or config belong to another kind of model than the class loading them."""


class WeightsShapeError(ModelError, ShapeError):
    """A tensor in the weights file has another shape than the config implies."""


class InputDecodeError(ModelError, ValueError):
    """An input file (audio, image) exists but cannot be decoded."""


class PrecisionUnsupportedError(ModelError, ValueError):
    """A model was asked for a ``dtype`` that its device cannot run (``"fp16"`` without float16 kernels)."""
