"""Small pure helpers that turn wire bytes into Python values with typed errors."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from accelerate_lab.api._errors import MalformedResponse

__all__ = ["Frame", "expect_dict", "expect_list", "parse_json"]


class Frame(NamedTuple):
    """One unit of a stream: an SSE event (`event`, `data`) or one NDJSON line (`event` is "").
    A NamedTuple: streams make one per chunk, and a tuple is the cheapest immutable record."""

    data: str
    event: str = ""


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
