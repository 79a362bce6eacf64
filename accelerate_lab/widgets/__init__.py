"""Notebook widgets (anywidget): they need the ``lab`` extra (ipywidgets, anywidget); the model demos
also need the ``models`` extra, so they are imported on first use.

>>> from accelerate_lab.widgets import BrowserDevice, Chat, MemoryDashboard
>>> from accelerate_lab.widgets import BertDemo, ClipDemo, VitDemo, WhisperDemo
"""

from typing import TYPE_CHECKING

from accelerate_lab.widgets.browser_device import BrowserDevice
from accelerate_lab.widgets.chat import Chat
from accelerate_lab.widgets.dashboard import MemoryDashboard

if TYPE_CHECKING:
    from accelerate_lab.widgets.demos import BertDemo, ClipDemo, VitDemo, WhisperDemo

_DEMOS = ("BertDemo", "ClipDemo", "VitDemo", "WhisperDemo")


def __getattr__(name: str) -> object:
    if name in _DEMOS:
        import accelerate_lab.widgets.demos

        return getattr(accelerate_lab.widgets.demos, name)
    raise AttributeError(f"module 'accelerate_lab.widgets' has no attribute {name!r}")


__all__ = ["BertDemo", "BrowserDevice", "Chat", "ClipDemo", "MemoryDashboard", "VitDemo", "WhisperDemo"]
