"""Content parts shared by adapters: OpenAI-style messages may carry images as data URLs."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["InlineImage", "iter_parts"]


@dataclass(frozen=True)
class InlineImage:
    mime_type: str
    data_b64: str


def _image(part: Mapping[str, object]) -> InlineImage:
    raw = part.get("data")
    if part.get("type") == "image" and isinstance(raw, (bytes, bytearray)):
        return InlineImage(str(part.get("mime_type", "image/png")), base64.b64encode(bytes(raw)).decode())
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise ValueError(
            "image parts must be data URLs (data:image/png;base64,...) or {'type': 'image', 'data': bytes}"
        )
    header, data = url[5:].split(";base64,", 1)
    return InlineImage(header or "image/png", data)


def iter_parts(content: object) -> Iterator[str | InlineImage]:
    """Text and images of a message's content, in order (a plain string is one text part)."""
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        yield "" if content is None else str(content)
        return
    for part in content:
        if isinstance(part, str):
            yield part
        elif isinstance(part, Mapping) and part.get("type") == "text":
            yield str(part.get("text", ""))
        elif isinstance(part, Mapping):
            yield _image(part)
