"""Helpers to serve a recorded body split at arbitrary byte boundaries (drawn by hypothesis)."""

from __future__ import annotations

from hypothesis import strategies as st

from accelerate_lab.api.testing import Reply

# Offsets into a body; many of them land inside multi-byte UTF-8 characters and `\n\n` separators.
offsets = st.lists(st.integers(1, 4000), max_size=12)


def split_reply(reply: Reply, cuts: list[int]) -> Reply:
    """The same reply, its body re-cut at `cuts`, with a pause so the pieces arrive separately."""
    body = b"".join(reply.chunks)
    from accelerate_lab.api.testing import split_at

    return Reply(
        reply.status,
        dict(reply.headers),
        split_at(body, [c % max(1, len(body)) for c in cuts]),
        chunk_delay=0.0005,
    )
