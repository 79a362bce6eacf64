"""A wgpu device shared by the gpu tests of this folder (created once: adapter start-up and pipeline
compilation dominate on Mesa's CPU Vulkan driver)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def gpu() -> Iterator[object]:
    pytest.importorskip("wgpu", reason="the gpu extra (wgpu-py) is not installed")
    from accelerate_lab.hal.wgpu_device import WgpuDevice

    yield WgpuDevice()
