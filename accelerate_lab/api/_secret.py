"""Secrets (API keys) that never show in `repr`, `str`, logs, exceptions or widget state.

>>> from accelerate_lab.api import Secret
>>> key = Secret("sk-live-123")
>>> key, str(key), key.reveal()
(Secret('********'), '********', 'sk-live-123')
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["REDACTED", "Secret", "redact"]

REDACTED = "********"


class Secret:
    """Holds a credential; only `reveal()` returns the value (for the request that needs it)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return REDACTED if self._value else ""

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Pickling a backend (e.g. to a worker) keeps the key working but never in clear text in logs.
        return (Secret, (self._value,))


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """Replaces every occurrence of each secret (and of its long prefixes providers echo back) in `text`.

    >>> redact("Incorrect API key provided: sk-live-123", [Secret("sk-live-123")])
    'Incorrect API key provided: ********'
    """
    for secret in secrets:
        value = secret.reveal()
        if len(value) < 4:
            continue
        text = text.replace(value, REDACTED)
        # Providers echo a key partially ("sk-abc***xyz"): hide any 8+ character prefix too.
        if len(value) > 12:
            text = text.replace(value[:8], REDACTED)
    return text
