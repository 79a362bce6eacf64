"""Errors of the local language model; each derives from `ModelError` and says what to do next."""

from __future__ import annotations

from accelerate_lab.models.errors import ModelError

__all__ = ["ChatTemplateError", "ContextLengthExceeded", "SamplingError", "UnsupportedQuantization"]


class UnsupportedQuantization(ModelError, ValueError):
    """A GGUF tensor is stored in a block format this package does not decode."""


class ContextLengthExceeded(ModelError, ValueError):
    """A prompt (with the conversation so far) does not fit the KV cache."""


class SamplingError(ModelError, ValueError):
    """Sampling parameters out of range (a negative temperature, top_p above 1, ...)."""


class ChatTemplateError(ModelError, ValueError):
    """The chat template of the model file failed to render these messages."""
