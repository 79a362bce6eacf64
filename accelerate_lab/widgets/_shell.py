"""The running IPython shell, when there is one: cell hooks and display for the widgets.

>>> forget = on_post_run_cell(lambda: None)  # outside IPython: nothing to hook, nothing to forget
>>> forget()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ipython", "on_post_run_cell"]


def ipython() -> Any:
    """The IPython shell running this code, or None (plain Python, tests)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def on_post_run_cell(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback()`` after every cell; returns the function that stops it."""
    shell = ipython()
    if shell is None:
        return lambda: None

    def hook(*_: object) -> None:
        callback()

    shell.events.register("post_run_cell", hook)

    def forget() -> None:
        if hook in shell.events.callbacks["post_run_cell"]:
            shell.events.unregister("post_run_cell", hook)

    return forget
