"""Errors that happen in the notebook's browser, raised in the kernel as typed exceptions.

The browser reports a failure as ``{"kind": ..., "message": ...}``; :func:`error_from_report` turns
it into the matching class, keeping the browser's own message.

>>> raise error_from_report({"kind": "out-of-memory", "message": "Not enough memory left."})
Traceback (most recent call last):
...
accelerate_lab.hal.browser_errors.BrowserOutOfMemory: the browser's GPU ran out of memory: ...
"""

from __future__ import annotations

from collections.abc import Mapping

from accelerate_lab.errors import DeviceError

__all__ = [
    "BrowserCancelled",
    "BrowserDataPending",
    "BrowserDeviceLost",
    "BrowserError",
    "BrowserIndexError",
    "BrowserKernelError",
    "BrowserOutOfMemory",
    "BrowserTimeout",
    "BrowserTransferError",
    "NoWebGPUError",
    "error_from_report",
]


class BrowserError(DeviceError):
    """Base of the errors of the browser devices."""


class BrowserKernelError(BrowserError):
    """A JavaScript exception or a WebGPU validation error while running a batch."""


class BrowserOutOfMemory(BrowserError, MemoryError):
    """The browser's GPU (or JavaScript heap) could not allocate a buffer."""


class BrowserDeviceLost(BrowserError):
    """The browser's GPU device was lost (driver reset, tab closed, page reloaded)."""


class NoWebGPUError(BrowserError):
    """The browser showing the notebook has no WebGPU."""


class BrowserIndexError(BrowserError, IndexError):
    """An index (embedding id) was out of range in a browser kernel."""


class BrowserTimeout(BrowserError, TimeoutError):
    """The browser did not answer in time."""


class BrowserTransferError(BrowserError):
    """A message between the kernel and the browser arrived incomplete (a chunk of it went missing)."""


class BrowserCancelled(BrowserError):
    """A batch was cancelled in the browser (the widget's cancel button, or ``BrowserDevice.cancel()``)."""


class BrowserDataPending(BrowserError):
    """A tensor's data is still in the browser and cannot arrive while a cell runs synchronously."""


_KINDS: dict[str, tuple[type[BrowserError], str]] = {
    "js": (BrowserKernelError, "a JavaScript error in the browser"),
    "validation": (BrowserKernelError, "WebGPU rejected a command in the browser"),
    "unsupported": (BrowserKernelError, "the browser cannot run this kernel"),
    "out-of-memory": (BrowserOutOfMemory, "the browser's GPU ran out of memory"),
    "device-lost": (BrowserDeviceLost, "the browser's GPU device was lost"),
    "no-webgpu": (NoWebGPUError, "the browser has no WebGPU"),
    "index": (BrowserIndexError, "an index was out of range in the browser"),
    "transfer": (BrowserTransferError, "a message from the kernel arrived incomplete in the browser"),
    "cancelled": (BrowserCancelled, "cancelled in the browser"),
}

_NEXT_STEP: dict[type[BrowserError], str] = {
    BrowserKernelError: "the tensors made by that batch are missing; re-run the cell",
    BrowserOutOfMemory: "free browser tensors (del t) or use smaller ones",
    BrowserDeviceLost: "re-run the cell that shows al.BrowserDevice() to reconnect",
    NoWebGPUError: "tensors stay on the kernel's devices ('cpu', 'wgpu'); see notebooks/03_devices.ipynb",
    BrowserIndexError: "check that every id lies in [0, rows of the table)",
    BrowserTransferError: "the tensors of that batch are missing; re-run the cell",
    BrowserCancelled: "the tensors of that batch and of those after it are incomplete; re-run the cell",
}


def error_from_report(report: Mapping[str, object]) -> BrowserError:
    """The exception for a browser error report ``{"kind", "message"}``."""
    kind = str(report.get("kind", "js"))
    cls, what = _KINDS.get(kind, (BrowserKernelError, f"a browser error of kind {kind!r}"))
    return cls(f"{what}: {report.get('message', '')} ({_NEXT_STEP[cls]})")
