"""Which models can share which kinds of tensor: a documented table that users extend.

Each tensor type maps to model families. A model name matches a family when the family is the
whole name or a part of it between separators (``"bert-base-uncased"`` and ``"google/bert"`` match
``bert``; ``"roberta"`` does not). The defaults come from the original SDK:

========================  ==============================================
tensor type               model families
========================  ==============================================
``text_embedding``        bert, t5, llama, bart, roberta, gpt2
``vision_embedding``      vit, clip, detr, swin, dino
``audio_embedding``       whisper, wav2vec2, clap, hubert
``vision_text_joint``     clip, llava, blip, xclip
``audio_text_joint``      clap, whisper_text, wav2vec2_text
========================  ==============================================

The table is the module's one piece of global state; :func:`reset_tensor_types` restores it.

>>> get_compatible_models_for_tensor("audio_embedding")
['whisper', 'wav2vec2', 'clap', 'hubert']
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from types import MappingProxyType

__all__ = [
    "DEFAULT_TENSOR_TYPES",
    "get_compatible_models_for_tensor",
    "model_matches",
    "register_tensor_type",
    "reset_tensor_types",
    "tensor_types",
]

DEFAULT_TENSOR_TYPES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "text_embedding": ("bert", "t5", "llama", "bart", "roberta", "gpt2"),
        "vision_embedding": ("vit", "clip", "detr", "swin", "dino"),
        "audio_embedding": ("whisper", "wav2vec2", "clap", "hubert"),
        "vision_text_joint": ("clip", "llava", "blip", "xclip"),
        "audio_text_joint": ("clap", "whisper_text", "wav2vec2_text"),
    }
)

_lock = threading.Lock()
_table: dict[str, tuple[str, ...]] = dict(DEFAULT_TENSOR_TYPES)


def get_compatible_models_for_tensor(tensor_type: str) -> list[str]:
    """The model families that can share a tensor of ``tensor_type`` ([] for an unknown type).

    >>> get_compatible_models_for_tensor("vision_text_joint")
    ['clip', 'llava', 'blip', 'xclip']
    """
    return list(_table.get(tensor_type, ()))


def register_tensor_type(tensor_type: str, models: Iterable[str], *, replace: bool = False) -> None:
    """Add model families to ``tensor_type`` (a new type is created); ``replace=True`` sets them exactly.

    >>> register_tensor_type("text_embedding", ["minilm"])
    >>> "minilm" in get_compatible_models_for_tensor("text_embedding")
    True
    >>> reset_tensor_types()
    """
    families = tuple(m.lower() for m in models)
    with _lock:
        current = () if replace else _table.get(tensor_type, ())
        _table[tensor_type] = tuple(dict.fromkeys((*current, *families)))


def tensor_types() -> dict[str, tuple[str, ...]]:
    """The whole table: tensor type -> model families."""
    with _lock:
        return dict(_table)


def reset_tensor_types() -> None:
    """Back to the SDK's defaults (for tests)."""
    with _lock:
        _table.clear()
        _table.update(DEFAULT_TENSOR_TYPES)


def model_matches(model_name: str, family: str) -> bool:
    """Whether ``model_name`` belongs to ``family`` (the family is the name or a separated part of it)."""
    return _pattern(family).search(model_name.lower()) is not None


@lru_cache(maxsize=256)
def _pattern(family: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|[^a-z0-9]){re.escape(family.lower())}(?:$|[^a-z0-9])")
