"""The device protocol: what every backend (cpu, wgpu, browser) implements.

A device owns buffers and runs named kernels on them. Kernels and their parameters are
listed in :mod:`accelerate_lab.hal.kernels`; tensors never touch a device's internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np

__all__ = ["Buffer", "Device", "DeviceInfo", "DeviceStats", "KernelInput", "MemoryInfo"]


@runtime_checkable
class Buffer(Protocol):
    """A block of device memory holding one array: its shape and numpy dtype are known on the host.

    On the cpu device a buffer is a ``numpy.ndarray`` (views share storage as numpy does).
    """

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[np.generic]: ...


KernelInput: TypeAlias = "Buffer | bool | int | float | None"


@dataclass(frozen=True)
class MemoryInfo:
    """Bytes a device holds now, at its peak, and its limit (``None`` when unknown)."""

    allocated_bytes: int
    peak_bytes: int
    limit_bytes: int | None = None


@dataclass(frozen=True)
class DeviceInfo:
    """What a device is, for listings (`al.devices()`, `accelerate-lab doctor`) and selection."""

    name: str
    kind: str  # "cpu", "gpu", "browser"
    description: str
    features: tuple[str, ...] = ()
    limits: Mapping[str, int] = field(default_factory=dict)
    is_fallback: bool = False


@dataclass
class DeviceStats:
    """Counters a device keeps: kernels dispatched, and kernels it sent to the CPU instead."""

    dispatches: int = 0
    submissions: int = 0
    cpu_fallbacks: dict[str, int] = field(default_factory=dict)


class Device(Protocol):
    """A place where tensors live and kernels run.

    ``run`` takes buffers and Python scalars (weak-typed, as numpy scalars) and the kernel's
    parameters, and returns a new buffer (``setitem`` writes in place and returns its target).
    Shape errors raise :class:`accelerate_lab.errors.ShapeError`, device failures
    :class:`accelerate_lab.errors.DeviceError`; a device never returns wrong numbers silently.
    """

    name: str
    stats: DeviceStats

    def info(self) -> DeviceInfo: ...

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> Buffer:
        """A zero-filled buffer."""
        ...

    def free(self, buffer: Buffer) -> None: ...

    def upload(self, array: np.ndarray) -> Buffer: ...

    def download(self, buffer: Buffer) -> np.ndarray: ...

    def supports(self, kernel: str) -> bool: ...

    def run(self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object]) -> Buffer: ...

    def memory(self) -> MemoryInfo: ...
