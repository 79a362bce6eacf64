"""The exception hierarchy: one base for the package, one base per area.

Every message names the values involved and says what to do next.
"""

from __future__ import annotations

__all__ = [
    "AccelerateLabError",
    "DeviceError",
    "DeviceMismatchError",
    "MemoryBudgetExceeded",
    "ShapeError",
    "UnsupportedKernelError",
]


class AccelerateLabError(Exception):
    """Base of every error accelerate_lab raises on purpose."""


class ShapeError(AccelerateLabError, ValueError):
    """Shapes that do not fit together (broadcasting, matmul, reshape, ...)."""


class DeviceError(AccelerateLabError, RuntimeError):
    """A device is missing, lost, or refused an operation."""


class DeviceMismatchError(DeviceError, ValueError):
    """An operation mixed tensors of different devices without `.to()`."""


class UnsupportedKernelError(DeviceError):
    """A device has no implementation of a kernel."""


class MemoryBudgetExceeded(AccelerateLabError, MemoryError):
    """An allocation would exceed a memory budget even after freeing what can be freed."""
