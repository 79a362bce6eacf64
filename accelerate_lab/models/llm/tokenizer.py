"""`Tokenizer`: byte-level BPE (GPT-2 style) built from a GGUF file's vocabulary and merges.

Text is split at special tokens (``<|im_start|>``, ...), then into words by GPT-2's pattern; each
word's UTF-8 bytes become printable characters, which merge pairwise in the order of the merge list.

>>> tok = Tokenizer(["a", "b", "ab", "<s>"], ["a b"], special=["<s>"])
>>> tok.encode("<s>abab"), tok.decode([3, 2, 0])
([3, 2, 2], '<s>aba')
"""

from __future__ import annotations

import codecs
import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence

import regex  # type: ignore[import-untyped]

from accelerate_lab.models.llm.gguf_file import GGUFFile

__all__ = ["TextStream", "Tokenizer"]

_WORDS = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
_SPECIAL_TYPES = (3, 4)  # GGUF token types CONTROL and USER_DEFINED: matched literally in text
_CACHE_LIMIT = 65536


@functools.cache
def _byte_chars() -> tuple[str, ...]:
    """GPT-2's map from each byte to a printable character."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return tuple(chars[b] for b in range(256))


@functools.cache
def _char_bytes() -> dict[str, int]:
    return {c: b for b, c in enumerate(_byte_chars())}


class TextStream:
    """Turns token ids into text as they arrive, holding back bytes of an unfinished UTF-8 character.

    >>> tok = Tokenizer(_byte_chars(), [])  # one token per byte: "€" takes three
    >>> stream = tok.text_stream()
    >>> [stream.push(i) for i in tok.encode("€!")]
    ['', '', '€', '!']
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """The text that token completes (possibly empty)."""
        return str(self._decoder.decode(self._tokenizer.token_bytes(token_id)))

    def flush(self) -> str:
        """Whatever is held back, with U+FFFD for an unfinished character."""
        return str(self._decoder.decode(b"", final=True))


class Tokenizer:
    """Byte-level BPE over a vocabulary (``tokens[i]`` is id ``i``) and a ranked merge list."""

    def __init__(
        self,
        tokens: Sequence[str],
        merges: Sequence[str],
        special: Iterable[str] = (),
        *,
        bos_id: int | None = None,
        eos_id: int | None = None,
    ) -> None:
        self._tokens = list(tokens)
        self._ids = {token: i for i, token in enumerate(self._tokens)}
        self._ranks = {tuple(merge.split(" ", 1)): rank for rank, merge in enumerate(merges)}
        self.special = {token: self._ids[token] for token in special}
        by_length = sorted(self.special, key=len, reverse=True)
        self._split = (
            regex.compile("(" + "|".join(regex.escape(t) for t in by_length) + ")") if by_length else None
        )
        self._special_ids = frozenset(self.special.values())
        self.bos_id = bos_id
        self.eos_id = eos_id
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_gguf(cls, file: GGUFFile) -> Tokenizer:
        """The tokenizer stored in a GGUF file (``tokenizer.ggml.*``); GPT-2 style BPE only."""
        from accelerate_lab.models.errors import WrongArchitectureError

        kind = file.get_str("tokenizer.ggml.model")
        if kind != "gpt2":
            raise WrongArchitectureError(
                f"{file.path.name} has a {kind!r} tokenizer; only byte-level BPE ('gpt2') vocabularies "
                "are supported"
            )
        tokens = file.get_strings("tokenizer.ggml.tokens")
        types = file.get_ints("tokenizer.ggml.token_type")
        return cls(
            tokens,
            file.get_strings("tokenizer.ggml.merges"),
            [t for t, kind_ in zip(tokens, types, strict=True) if kind_ in _SPECIAL_TYPES],
            bos_id=file.get_int("tokenizer.ggml.bos_token_id")
            if file.has("tokenizer.ggml.bos_token_id")
            else None,
            eos_id=file.get_int("tokenizer.ggml.eos_token_id")
            if file.has("tokenizer.ggml.eos_token_id")
            else None,
        )

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def token_to_id(self, token: str) -> int | None:
        return self._ids.get(token)

    def id_to_token(self, token_id: int) -> str:
        return self._tokens[token_id]

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_ids

    def _bpe(self, word: str) -> tuple[int, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        while len(parts) > 1:
            rank, first = min(
                (self._ranks.get(pair, len(self._ranks)), i)
                for i, pair in enumerate(itertools.pairwise(parts))
            )
            if rank == len(self._ranks):
                break
            pair = (parts[first], parts[first + 1])
            merged: list[str] = parts[:first]
            i = first
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = tuple(self._symbol_ids(parts))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def _symbol_ids(self, parts: list[str]) -> Iterator[int]:
        """Ids of merged symbols; a symbol missing from the vocabulary falls back to its single bytes, and
        bytes the vocabulary lacks are dropped (as llama.cpp and Hugging Face tokenizers do)."""
        for part in parts:
            found = self._ids.get(part)
            if found is not None:
                yield found
            else:
                yield from (self._ids[c] for c in part if c in self._ids)

    def _encode_plain(self, text: str, out: list[int]) -> None:
        chars = _byte_chars()
        for word in _WORDS.findall(text):
            out.extend(self._bpe("".join(chars[b] for b in word.encode("utf-8"))))

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Token ids of ``text``; special tokens written in it count as such unless not ``allow_special``."""
        out: list[int] = []
        pieces = self._split.split(text) if allow_special and self._split is not None else [text]
        for piece in pieces:
            if piece in self.special and allow_special:
                out.append(self.special[piece])
            elif piece:
                self._encode_plain(piece, out)
        return out

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (a special token: its own text)."""
        token = self._tokens[token_id]
        if token_id in self._special_ids:
            return token.encode("utf-8")
        lookup = _char_bytes()
        return b"".join(bytes([lookup[c]]) if c in lookup else c.encode("utf-8") for c in token)

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        """The text of ``ids`` (invalid UTF-8 becomes U+FFFD)."""
        data = b"".join(self.token_bytes(i) for i in ids if not (skip_special and i in self._special_ids))
        return data.decode("utf-8", errors="replace")

    def text_stream(self) -> TextStream:
        """An incremental decoder for streaming generated tokens as text."""
        return TextStream(self)
