"""A stand-in for the browser's half of the weight cache (widget/src/session.ts + weight_cache.ts), in
process: it answers each batch at once, asking with one ``need`` for the ``cached`` uploads it does not
hold and storing what the fills bring, so kernel-side tests can see what crosses without a browser."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from accelerate_lab.hal.browser_device import BrowserProxyDevice


@dataclass
class FakeBrowserCache:
    """Holds weights by hash; ``messages`` logs every message the kernel sent (content, buffer sizes).

    A fill's bytes must hash to what was asked (else the test fails: a wrong weight was sent); a batch
    whose fills lack a weight fails, as the browser's does ("never came")."""

    held: dict[str, bytes] = field(default_factory=dict)
    asked: list[list[str]] = field(default_factory=list)
    """The hashes of each ``need``."""
    messages: list[tuple[dict[str, Any], list[int]]] = field(default_factory=list)
    device: BrowserProxyDevice | None = None
    _filled: list[str] = field(default_factory=list)

    def connect(self, **options: Any) -> BrowserProxyDevice:
        """A new kernel-side device talking to this browser (a new session; the cache stays)."""
        self.device = BrowserProxyDevice(self, **options)
        return self.device

    def __call__(self, content: dict[str, Any], buffers: Sequence[memoryview]) -> None:
        self.messages.append((content, [b.nbytes for b in buffers]))
        assert self.device is not None
        if content["kind"] == "fill":
            for digest, data in zip(content["hashes"], buffers, strict=True):
                assert hashlib.sha256(data).hexdigest() == digest, "a fill carried bytes of another hash"
                self.held[digest] = bytes(data)
                self._filled.append(digest)
            return
        if content["kind"] != "batch":
            return
        cached = [c["hash"] for c in content["commands"] if c["op"] == "cached"]
        missing = [h for h in dict.fromkeys(cached) if h not in self.held]
        error: dict[str, object] | None = None
        if missing:
            self._filled = []
            self.asked.append(missing)
            self.device.receive({"kind": "need", "seq": content["seq"], "hashes": missing}, [])
            lacking = [h for h in missing if h not in self._filled]
            if lacking:
                message = f"the bytes of cached weight {lacking[0][:12]}… never came"
                error = {"kind": "js", "message": message, "command": 0}
        reply = {"kind": "reply", "seq": content["seq"], "downloads": [], "error": error, "memory": None}
        self.device.receive(reply, [])

    def sent(self, kind: str) -> list[dict[str, Any]]:
        """The messages of ``kind`` the kernel sent."""
        return [content for content, _ in self.messages if content["kind"] == kind]

    def filled_bytes(self) -> int:
        return sum(sum(sizes) for content, sizes in self.messages if content["kind"] == "fill")
