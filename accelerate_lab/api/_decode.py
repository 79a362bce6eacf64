"""Small pure helpers that turn wire bytes into Python values with typed errors, and the sans-I/O
server-sent-events parser the transport feeds with text as it arrives."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from accelerate_lab.api._errors import MalformedResponse

__all__ = ["Frame", "SseParser", "expect_dict", "expect_list", "parse_json"]


_raw_decode = json.JSONDecoder().raw_decode


class Frame(NamedTuple):
    """One unit of a stream: an SSE event (`event`, `data`) or one NDJSON line (`event` is "").
    A NamedTuple: streams make one per chunk, and a tuple is the cheapest immutable record."""

    data: str
    event: str = ""

    def json_object(self, what: str) -> dict[str, Any]:
        """The data as a JSON object (else MalformedResponse naming `what`). The usual event, a value with
        no whitespace around it, goes straight to the C scanner: `json.loads` adds two regex scans and
        three calls, over a third of the parsing time of a short chunk.

        >>> Frame('{"a": 1}').json_object("an event")
        {'a': 1}
        """
        text = self.data
        try:
            value, end = _raw_decode(text)
        except ValueError:
            end = -1
        if end != len(text):
            value = json.loads(text)  # whitespace around the value, or json.loads's own error
        return value if type(value) is dict else expect_dict(value, what)


class SseParser:
    r"""Server-sent events (WHATWG event-stream rules, as httpx-sse reads them) from text pieces cut
    anywhere: lines end in CRLF, CR or LF; a blank line dispatches the event; comments and unknown
    fields are skipped. One `feed` per network read returns every event that read completed, so a
    stream costs one async step per read rather than several per event.

    >>> p = SseParser()
    >>> p.feed("event: ping\ndata: {}\n\ndata: a\r\ndata: ")
    [Frame(data='{}', event='ping')]
    >>> p.feed("b\n\n: comment\n")
    [Frame(data='a\nb', event='message')]
    """

    def __init__(self) -> None:
        self._rest = ""  # an unfinished line
        self._cr = False  # the last piece ended in CR: a LF starting the next one belongs to it
        self._event = ""
        self._data: list[str] = []
        self._id = ""  # kept across events, as the spec says; it also makes blank lines dispatch
        self._retry = False

    def feed(self, text: str) -> list[Frame]:
        if self._cr:
            text = "\r" + text
        self._cr = text.endswith("\r")
        if self._cr:
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines[0] = self._rest + lines[0]
        self._rest = lines.pop()
        return self._lines(lines)

    def flush(self) -> list[Frame]:
        """At the end of the body: the last line, if it had no line ending."""
        lines = [self._rest] if self._rest or self._cr else []
        self._rest, self._cr = "", False
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[Frame]:
        out = []
        data = self._data
        for line in lines:
            if line[:6] == "data: ":  # most lines: checked before the general field parsing
                data.append(line[6:])
                continue
            if not line:
                if data or self._event or self._id or self._retry:
                    out.append(Frame("\n".join(data), self._event or "message"))
                    data = self._data = []
                    self._event, self._retry = "", False
                continue
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._id = value
            elif name == "retry":
                self._retry = self._retry or _is_int(value)  # only its presence matters: it dispatches
        return out


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def parse_json(content: bytes | str, where: str = "") -> Any:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        excerpt = content[:200] if isinstance(content, str) else content[:200].decode("utf-8", "replace")
        raise MalformedResponse(
            f"expected JSON from {where or 'the server'}, got {excerpt!r}: {exc}; "
            "check the URL points at the right kind of server"
        ) from exc


def expect_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedResponse(f"expected a JSON object for {what}, got {type(value).__name__}")
    return value


def expect_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedResponse(f"expected a JSON array for {what}, got {type(value).__name__}")
    return value
