"""Messages of any size over a connection whose messages are capped (sans I/O; the widget does the I/O).

Jupyter's websocket refuses a message over ``websocket_max_message_size`` (tornado's default, 10 MiB),
so a message whose binary buffers exceed :data:`MESSAGE_BYTES` travels as *chunk* messages followed by
an *end* marker, the same way both ways (``widget/src/chunks.ts`` is the front end's half):

- ``{"kind": "chunk", "transfer": T, "sizes": [...], "parts": [[buffer, offset], ...]}`` with the
  pieces as binary buffers (each at most :data:`CHUNK_BYTES`, as many per message as fit the budget);
- ``{"kind": "end", "transfer": T, "content": {...}}``: the original content, delivered with the
  buffers reassembled by offset.

A sender sends one transfer's messages back to back and a connection keeps their order, so a receiver
holds at most one transfer (its buffers, written in place): a chunk of another transfer, an end
marker with bytes missing, or a transfer idle longer than ``timeout`` means a chunk went missing
(:class:`BrowserTransferError`). The front end reports such a loss of a batch as
``{"kind": "lost", "message"}``.

>>> messages = split({"kind": "batch"}, [memoryview(bytes(10))], transfer=1, chunk_bytes=4, message_bytes=8)
>>> [(m[0]["kind"], [len(b) for b in m[1]]) for m in messages]
[('chunk', [4, 4]), ('chunk', [2]), ('end', [])]
>>> assembler = Assembler()
>>> [assembler.feed(*m) for m in messages][-1][0][0]
{'kind': 'batch'}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from accelerate_lab.hal.browser_errors import BrowserTransferError

__all__ = ["CHUNK_BYTES", "MESSAGE_BYTES", "Assembler", "Message", "split"]

CHUNK_BYTES = 4 << 20
"""Largest piece of a buffer in one message."""
MESSAGE_BYTES = 8 << 20
"""Most binary bytes in one message: under tornado's default 10 MiB limit with room for the JSON."""

Message = tuple[dict[str, object], list[memoryview]]


def split(
    content: dict[str, object],
    buffers: Sequence[memoryview],
    *,
    transfer: int,
    chunk_bytes: int = CHUNK_BYTES,
    message_bytes: int = MESSAGE_BYTES,
) -> list[Message]:
    """``content`` and ``buffers`` as messages within ``message_bytes`` each (one message if it fits)."""
    views = [memoryview(b).cast("B") for b in buffers]
    sizes = [v.nbytes for v in views]
    if sum(sizes) <= message_bytes:
        return [(content, views)]
    messages: list[Message] = []
    parts: list[list[int]] = []
    pieces: list[memoryview] = []
    used = 0
    for index, view in enumerate(views):
        for offset in range(0, view.nbytes, chunk_bytes):
            piece = view[offset : offset + chunk_bytes]
            if pieces and used + piece.nbytes > message_bytes:
                messages.append(_chunk(transfer, sizes, parts, pieces))
                parts, pieces, used = [], [], 0
            parts.append([index, offset])
            pieces.append(piece)
            used += piece.nbytes
    if pieces:
        messages.append(_chunk(transfer, sizes, parts, pieces))
    messages.append(({"kind": "end", "transfer": transfer, "content": content}, []))
    return messages


def _chunk(transfer: int, sizes: list[int], parts: list[list[int]], pieces: list[memoryview]) -> Message:
    return {"kind": "chunk", "transfer": transfer, "sizes": sizes, "parts": parts}, pieces


@dataclass
class _Transfer:
    number: int
    buffers: list[bytearray]
    last: float
    received: int = 0
    expected: int = field(init=False)

    def __post_init__(self) -> None:
        self.expected = sum(len(b) for b in self.buffers)

    def missing(self, why: str) -> BrowserTransferError:
        return BrowserTransferError(
            f"transfer {self.number}: {why} after {self.received} of {self.expected} bytes had arrived "
            "(a message was lost, for example when the connection to JupyterLab dropped); re-run the cell"
        )


Delivered = tuple[Mapping[str, object], Sequence[bytes | memoryview]]


class Assembler:
    """Reassembles chunked messages; other messages pass through.

    ``feed`` returns ``(message, lost)``: the complete message (``None`` while a transfer is in
    progress) and, when a chunk went missing, the :class:`BrowserTransferError` saying so (that
    transfer is forgotten; a message that came after it is still delivered).
    """

    def __init__(self, timeout: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._current: _Transfer | None = None

    @property
    def pending_bytes(self) -> int:
        """Bytes held for the transfer in progress."""
        return 0 if self._current is None else self._current.expected

    def feed(
        self, content: Mapping[str, object], buffers: Sequence[bytes | memoryview]
    ) -> tuple[Delivered | None, BrowserTransferError | None]:
        kind = content.get("kind")
        now = self._clock()
        number = int(content["transfer"]) if kind in ("chunk", "end") else None  # type: ignore[call-overload]
        current, lost = self._current, None
        if current is not None and current.number != number:
            lost = current.missing("another message came" if number is None else f"transfer {number} began")
        elif current is not None and now - current.last > self.timeout:
            lost = current.missing(f"nothing came for {now - current.last:.0f} s")
        if lost is not None:
            self._current = current = None
        if number is None:
            return (content, buffers), lost
        if kind == "end":
            self._current = None
            if current is None:
                why = "the end marker came without its chunks (a message was lost); re-run the cell"
                return None, lost or BrowserTransferError(f"transfer {number}: {why}")
            if current.received != current.expected:
                return None, current.missing("the end marker came")
            original = content["content"]
            assert isinstance(original, Mapping)
            return (original, [memoryview(b) for b in current.buffers]), lost
        if current is None:
            sizes = content["sizes"]
            assert isinstance(sizes, list)
            current = self._current = _Transfer(number, [bytearray(int(n)) for n in sizes], now)
        current.last = now
        parts = content["parts"]
        assert isinstance(parts, list)
        for (index, offset), piece in zip(parts, buffers, strict=True):
            data = memoryview(piece).cast("B")
            current.buffers[index][offset : offset + data.nbytes] = data
            current.received += data.nbytes
        return None, lost
