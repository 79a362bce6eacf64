"""Notebook widgets (anywidget): they need the ``lab`` extra (ipywidgets, anywidget).

>>> from accelerate_lab.widgets import BrowserDevice, Chat, MemoryDashboard
"""

from accelerate_lab.widgets.browser_device import BrowserDevice
from accelerate_lab.widgets.chat import Chat
from accelerate_lab.widgets.dashboard import MemoryDashboard

__all__ = ["BrowserDevice", "Chat", "MemoryDashboard"]
