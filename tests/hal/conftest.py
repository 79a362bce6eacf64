"""A wgpu device shared by the gpu tests of this folder (created once: adapter start-up and pipeline
compilation dominate on Mesa's CPU Vulkan driver), and the cpu device's compiled kernels for the tests
that need them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accelerate_lab.hal import cpu_native, cpu_nn


@pytest.fixture(scope="session")
def gpu() -> Iterator[object]:
    pytest.importorskip("wgpu", reason="the gpu extra (wgpu-py) is not installed")
    from accelerate_lab.hal.wgpu_device import WgpuDevice

    yield WgpuDevice()


@pytest.fixture
def compiled_kernels() -> None:
    """Skip where the cpu device has no compiled nn kernels (no C compiler); fail where they do not
    build (a compiler that rejects nn.c is a bug, not a missing tool)."""
    if cpu_nn.library() is None:
        status = cpu_native.native_status()["nn"]
        if "build failed" in status:
            pytest.fail(status)
        pytest.skip(f"no compiled nn kernels: {status}")
