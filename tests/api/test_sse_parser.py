"""Our sans-I/O server-sent-events parser against httpx-sse's decoders (the reference), on streams
cut at arbitrary points: line endings (CR, LF, CRLF, a CR split across reads), comments, fields."""

from __future__ import annotations

from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerate_lab.api._decode import SseParser

TOKENS = [
    "data",
    "event",
    "id",
    "retry",
    ":",
    " ",
    "\r",
    "\n",
    "x",
    "1",
    "\0",
    "é",
    "\r\n",
    "\n\n",
    "data: {}",
]


def reference(pieces: list[str]) -> list[tuple[str, str]]:
    lines_decoder, decoder = SSELineDecoder(), SSEDecoder()
    lines = [
        line for piece in pieces if piece for line in lines_decoder.decode(piece)
    ] + lines_decoder.flush()
    events = (decoder.decode(line.rstrip("\n")) for line in lines)
    return [(event.data, event.event) for event in events if event is not None]


def ours(pieces: list[str]) -> list[tuple[str, str]]:
    parser = SseParser()
    frames = [frame for piece in pieces for frame in parser.feed(piece)] + parser.flush()
    return [(frame.data, frame.event) for frame in frames]


@settings(max_examples=500, deadline=None)
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=40), cuts=st.lists(st.integers(0, 200), max_size=6))
def test_parser_matches_httpx_sse_wherever_the_stream_is_cut(tokens: list[str], cuts: list[int]) -> None:
    text = "".join(tokens)
    bounds = [*sorted({cut % (len(text) + 1) for cut in cuts}), len(text)]
    pieces = [text[start:end] for start, end in zip([0, *bounds], bounds, strict=False)]
    assert ours(pieces) == reference(pieces)
