"""Device selection from adapter type, features and limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import accelerate_lab as al
from accelerate_lab.hal import CpuDevice, DeviceInfo, register_device


def fake(
    name: str,
    kind: str,
    description: str = "",
    fallback: bool = False,
    features: tuple[str, ...] = (),
    limits: dict[str, int] | None = None,
) -> Callable[[], CpuDevice]:
    class Fake(CpuDevice):
        def info(self) -> DeviceInfo:
            return DeviceInfo(name, kind, description, features, limits or {}, fallback)

    Fake.name = name
    return Fake


@pytest.fixture(autouse=True)
def _no_real_wgpu() -> None:
    register_device(
        "wgpu", fake("wgpu", "gpu", "CPU adapter 'llvmpipe' via Vulkan", fallback=True), replace=True
    )


def test_a_software_adapter_does_not_beat_the_cpu_by_default() -> None:
    assert al.select_device().name == "cpu"
    assert al.select_device(allow_software=True).name == "cpu"
    assert al.select_device(prefer="gpu").name == "wgpu"


def test_a_hardware_gpu_beats_the_browser_and_the_cpu() -> None:
    register_device("browser:webgpu", fake("browser:webgpu", "browser", "IntegratedGPU"))
    assert al.select_device().name == "browser:webgpu"
    register_device("wgpu", fake("wgpu", "gpu", "DiscreteGPU adapter 'H100' via Vulkan"), replace=True)
    assert al.select_device().name == "wgpu"
    assert al.select_device(prefer="browser").name == "browser:webgpu"


def test_features_and_limits_are_requirements() -> None:
    register_device(
        "gpu2",
        fake("gpu2", "gpu", "DiscreteGPU", features=("shader-f16",), limits={"max-buffer-size": 1 << 30}),
    )
    assert al.select_device(features=["shader-f16"]).name == "gpu2"
    with pytest.raises(al.DeviceError, match=r"gpu2 limits too small \(max-buffer-size"):
        al.select_device(features=["shader-f16"], limits={"max-buffer-size": 1 << 40})


def test_a_named_device_is_returned_or_explained() -> None:
    assert al.select_device(prefer="cpu").name == "cpu"
    with pytest.raises(al.DeviceError, match="lacks features subgroup"):
        al.select_device(prefer="cpu", features=["subgroup"])
