"""Text to token ids and back with Hugging Face ``tokenizers`` (WordPiece, byte-level BPE).

>>> tok = TextTokenizer(folder / "tokenizer.json", max_length=256)  # doctest: +SKIP
>>> tok(["a photo", "a photo of a cat"]).input_ids.shape  # doctest: +SKIP
(2, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelerate_lab.models.errors import ModelNotFoundError, WeightsCorruptError

__all__ = ["TextTokenizer", "TokenBatch", "require_tokenizer"]


@dataclass(frozen=True)
class TokenBatch:
    """Token ids and the mask of real (1) versus padding (0) tokens, both ``(batch, length)`` int64."""

    input_ids: np.ndarray
    attention_mask: np.ndarray


class TextTokenizer:
    """A ``tokenizer.json``, truncating at ``max_length`` and padding each batch to its longest text."""

    def __init__(self, path: Path, max_length: int, pad_token: str | None = None) -> None:
        from tokenizers import Tokenizer

        if not path.is_file():
            raise ModelNotFoundError(f"{path} is missing: the model folder needs its tokenizer.json")
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises a bare Exception for any parse failure
            raise WeightsCorruptError(
                f"{path} is not a tokenizer.json tokenizers can read ({error})"
            ) from error
        padding = self._tokenizer.padding
        pad = padding["pad_token"] if padding else pad_token
        pad_id = self._tokenizer.token_to_id(pad) if pad is not None else None
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad or "[PAD]")
        self.max_length = max_length

    def __call__(self, texts: str | Sequence[str]) -> TokenBatch:
        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch:
            raise ValueError("no texts to tokenize: pass a string or a non-empty list of strings")
        encodings = self._tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return TokenBatch(ids, mask)

    def token_id(self, token: str) -> int:
        """The id of ``token``; `WeightsCorruptError` when the vocabulary lacks it."""
        found = self._tokenizer.token_to_id(token)
        if found is None:
            raise WeightsCorruptError(f"the tokenizer has no token {token!r}, which this model needs")
        return int(found)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` without special tokens."""
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))


def require_tokenizer(tokenizer: TextTokenizer | None, model: str) -> TextTokenizer:
    """``tokenizer``, which the model named ``model`` needs to take text rather than token ids."""
    if tokenizer is None:
        raise ModelNotFoundError(f"{model} has no tokenizer.json: pass token ids to the model instead")
    return tokenizer
