"""Fixtures for the sharing tests: a second device that really copies, and a clean tensor-type table."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from accelerate_lab.hal import CpuDevice, register_device
from accelerate_lab.hal.device import Buffer
from accelerate_lab.sharing import reset_tensor_types


class CopyingDevice(CpuDevice):
    """A device whose memory is separate from the host's (uploads and downloads copy, like a GPU),
    which records the buffers it was asked to free."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.freed: list[Buffer] = []

    def upload(self, array: np.ndarray) -> Buffer:
        return np.array(array, copy=True)

    def download(self, buffer: Buffer) -> np.ndarray:
        assert isinstance(buffer, np.ndarray)
        return np.array(buffer, copy=True)

    def free(self, buffer: Buffer) -> None:
        self.freed.append(buffer)


@pytest.fixture
def gpu_like() -> CopyingDevice:
    """A device named ``gpu-like`` (the registry is reset after every test by tests/conftest.py)."""
    device = CopyingDevice("gpu-like")
    register_device("gpu-like", lambda: device)
    return device


@pytest.fixture(autouse=True)
def _default_tensor_types() -> Iterator[None]:
    yield
    reset_tensor_types()
