"""The tokenizer from the GGUF vocabulary against transformers' tokenizer for the same file."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from accelerate_lab.models.llm import GGUFFile, Tokenizer
from accelerate_lab.models.llm.tokenizer import _byte_chars

TEXTS = [
    "Hello world",
    "12345 hello  world's <|im_start|>x",
    "Héllo wörld! こんにちは 😀 x² ³ 1,000.5\n\n\tTabs\r\n  spaces   ",
    "<|im_start|>user\nWhat's 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "don't I'LL we've THEY'RE",
    "   leading and trailing   ",
    "def f(x):\n    return x ** 2  # comment\n",
    "a<|endoftext|>b<unknown>",
    "bytes the vocabulary lacks: \x04 \U00040000 ÿ",
    "",
]


@pytest.fixture(scope="module")
def tokenizer(gguf_file: GGUFFile) -> Tokenizer:
    return Tokenizer.from_gguf(gguf_file)


@pytest.mark.parametrize("text", TEXTS)
def test_encode_and_decode_match_transformers(tokenizer: Tokenizer, hf_tokenizer: Any, text: str) -> None:
    ids = tokenizer.encode(text)
    assert ids == hf_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == hf_tokenizer.decode(ids)


def test_special_tokens_can_be_read_as_plain_text(tokenizer: Tokenizer) -> None:
    assert tokenizer.encode("<|im_start|>")[0] == 1
    plain = tokenizer.encode("<|im_start|>", allow_special=False)
    assert 1 not in plain and tokenizer.decode(plain) == "<|im_start|>"
    assert tokenizer.decode([1, 2], skip_special=True) == ""


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40))
def test_round_trip_and_streaming_reproduce_any_text(tokenizer: Tokenizer, text: str) -> None:
    chars = _byte_chars()
    assume(all(tokenizer.token_to_id(chars[b]) is not None for b in text.encode()))  # the rest is dropped
    ids = tokenizer.encode(text, allow_special=False)
    assert tokenizer.decode(ids) == text
    stream = tokenizer.text_stream()
    assert "".join(stream.push(i) for i in ids) + stream.flush() == text
