"""Result types: `StreamChunk`'s hand-written constructor keeps the frozen dataclass's behaviour."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from accelerate_lab.api import StreamChunk, ToolCall, Usage


def test_stream_chunk_constructor_matches_its_fields() -> None:
    params = inspect.signature(StreamChunk).parameters
    fields = dataclasses.fields(StreamChunk)
    assert list(params) == [f.name for f in fields]  # a new field must be added to __init__ too
    empty = StreamChunk()
    for f in fields:
        assert getattr(empty, f.name) == (f.default_factory() if callable(f.default_factory) else f.default)


def test_stream_chunk_is_a_frozen_value() -> None:
    calls = (ToolCall("t1", "f", {"x": 1}),)
    chunk = StreamChunk("hi", True, "stop", Usage(3, 4), calls, {"id": "c"})
    assert chunk == StreamChunk(
        text="hi", done=True, finish_reason="stop", usage=Usage(3, 4), tool_calls=calls
    )
    assert chunk != StreamChunk(text="hi")  # raw is not compared, every other field is
    assert dataclasses.replace(chunk, text="ho").text == "ho" and chunk.text == "hi"
    assert pickle.loads(pickle.dumps(chunk)) == chunk and "raw" not in repr(chunk)
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.text = "changed"  # type: ignore[misc]
