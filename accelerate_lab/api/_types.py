"""Results and request descriptions shared by every backend (frozen dataclasses, no I/O)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from accelerate_lab.api._decode import parse_json

__all__ = [
    "ArrayLike",
    "ChatResponse",
    "HttpRequest",
    "HttpResponse",
    "Message",
    "Priority",
    "StreamChunk",
    "StreamFormat",
    "ToolCall",
    "Usage",
]

Message = Mapping[str, object]
"""A chat message in the OpenAI form: {"role": "user", "content": "hi"} (content may be a list of parts)."""

StreamFormat = Literal["sse", "ndjson"]


class ArrayLike(Protocol):
    """Anything numpy can read: numpy arrays, `accelerate_lab.Tensor`, objects with `__array__`."""

    def __array__(self, *args: Any, **kwargs: Any) -> Any: ...


class Priority(enum.IntEnum):
    """Queue priority of a request: HIGH runs before NORMAL before LOW; FIFO within one priority."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


@dataclass(frozen=True)
class Usage:
    """Tokens a call consumed, as the provider reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; `arguments` is the parsed JSON object."""

    id: str
    name: str
    arguments: Mapping[str, object]


@dataclass(frozen=True)
class ChatResponse:
    """One complete answer. `raw` is the provider's JSON as received."""

    text: str
    model: str
    usage: Usage | None = None
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    raw: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, init=False)
class StreamChunk:
    """One piece of a streamed answer; the last chunk has `done=True` (and usage / tool calls if any)."""

    text: str = ""
    done: bool = False
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    raw: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

    def __init__(
        self,
        text: str = "",
        done: bool = False,
        finish_reason: str | None = None,
        usage: Usage | None = None,
        tool_calls: tuple[ToolCall, ...] = (),
        raw: Mapping[str, object] | None = None,
    ) -> None:
        # Written into __dict__ directly: the frozen dataclass's own __init__ calls object.__setattr__
        # once per field, which doubled the cost of the one object a stream makes per token.
        fields = self.__dict__
        fields["text"] = text
        fields["done"] = done
        fields["finish_reason"] = finish_reason
        fields["usage"] = usage
        fields["tool_calls"] = tool_calls
        fields["raw"] = {} if raw is None else raw


@dataclass(frozen=True)
class HttpRequest:
    """What a protocol adapter asks the transport to send. `path` is joined to the endpoint's base URL
    (or to its origin when `from_root`); exactly one of `json`, `content`, `files` is used as the body."""

    method: str
    path: str
    json: object = None
    content: bytes | None = None
    data: Mapping[str, str] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: StreamFormat | None = None
    from_root: bool = False


@dataclass(frozen=True)
class HttpResponse:
    """A complete response as the transport read it; adapters parse these."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str = ""

    def json(self) -> Any:
        return parse_json(self.content, self.url)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def as_messages(messages: str | Sequence[Message]) -> list[Message]:
    """Accepts a plain string as one user message."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return list(messages)
