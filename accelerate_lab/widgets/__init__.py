"""Notebook widgets (anywidget): they need the ``lab`` extra (ipywidgets, anywidget).

>>> from accelerate_lab.widgets import BrowserDevice
"""

from accelerate_lab.widgets.browser_device import BrowserDevice

__all__ = ["BrowserDevice"]
