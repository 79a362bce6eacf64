"""Loading progress read from the model's own ``tqdm`` bar: how many tensors its weights loader has read.

`~accelerate_lab.models.weights.Weights` ticks a bar named ``"loading <model name>"`` once per tensor
it reads. `watch_loading` polls tqdm's live bars on a daemon thread and reports that bar's
``(done, total)`` whenever it moves. Nothing is estimated: where tqdm is disabled there is no live
bar, nothing is reported, and the view shows a progress bar without a fraction.

>>> import io, time
>>> seen = []
>>> with watch_loading("tiny", lambda done, total: seen.append((done, total)), every=0.01):
...     bar = tqdm(total=3, desc="loading tiny", file=io.StringIO())
...     bar.update(3); time.sleep(0.1); bar.close()
>>> seen[-1]
(3, 3)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.std import tqdm  # type: ignore[import-untyped]

__all__ = ["watch_loading"]


def _bar_progress(desc: str) -> tuple[int, int] | None:
    # tqdm.auto's classes (console, notebook) all register their live bars in the base class's set
    with tqdm.get_lock():
        bars = list(tqdm._instances)
    for bar in bars:
        if getattr(bar, "desc", None) == desc and getattr(bar, "total", None):
            return int(bar.n), int(bar.total)
    return None


@contextmanager
def watch_loading(name: str, report: Callable[[int, int], None], every: float = 0.1) -> Iterator[None]:
    """Call ``report(done, total)`` while the block runs, each time the bar of model ``name`` moves."""
    desc = f"loading {name}"
    stop = threading.Event()

    def poll() -> None:
        last: tuple[int, int] | None = None
        while not stop.wait(every):
            now = _bar_progress(desc)
            if now is not None and now != last:
                report(*now)
                last = now

    thread = threading.Thread(target=poll, name="accelerate_lab-load-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
