"""The sharing layer's own error: data that was freed (or a view that was closed) cannot be read."""

from __future__ import annotations

from accelerate_lab.errors import AccelerateLabError

__all__ = ["TensorFreedError"]


class TensorFreedError(AccelerateLabError, RuntimeError):
    """A shared tensor whose storage was freed or evicted, or a closed view, was used."""
