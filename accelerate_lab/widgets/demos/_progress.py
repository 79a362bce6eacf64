"""Loading progress from the model's weights loader: how many of its tensors have been read.

`~accelerate_lab.models.weights.Weights` reports each tensor it loads to the callbacks registered
in its thread with `~accelerate_lab.models.weights.loading_progress` (the same numbers its ``tqdm``
bar shows). `watch_loading` forwards those of one model, at most one report per ``every`` seconds
so a widget is not flooded, and always the last one. Nothing is estimated.

>>> seen = []
>>> with watch_loading("tiny", lambda done, total: seen.append((done, total))):
...     pass
>>> seen
[]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from accelerate_lab.models.weights import loading_progress

__all__ = ["watch_loading"]


@contextmanager
def watch_loading(name: str, report: Callable[[int, int], None], every: float = 0.1) -> Iterator[None]:
    """Call ``report(done, total)`` while the block loads model ``name`` in this thread."""
    last = -every

    def forward(model: str, done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if model == name and (done == total or now - last >= every):
            last = now
            report(done, total)

    with loading_progress(forward):
        yield
