"""The device registry: lookup, registration, unavailable devices, reset."""

from __future__ import annotations

import pytest

import accelerate_lab as al
from accelerate_lab.hal import (
    CpuDevice,
    get_device,
    probe_devices,
    register_device,
    reset_devices,
    unregister_device,
)


def test_cpu_is_always_available_and_a_singleton() -> None:
    assert get_device("cpu") is get_device("cpu")
    assert [d.name for d in al.devices()][:1] == ["cpu"] or "cpu" in [d.name for d in al.devices()]


def test_registering_a_device_makes_tensors_placeable_there() -> None:
    class Other(CpuDevice):
        name = "other"

    register_device("other", Other)
    t = al.ones([2]).to("other")
    assert t.device == "other"
    with pytest.raises(al.DeviceMismatchError, match="cpu, other"):
        t + al.ones([2])
    assert (t + t.to("other")).to("cpu").tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="already registered"):
        register_device("other", Other)
    unregister_device("other")
    with pytest.raises(al.DeviceError, match="unknown device 'other'"):
        get_device("other")


def test_a_failing_factory_reports_why_and_is_not_listed() -> None:
    def broken() -> CpuDevice:
        raise RuntimeError("no adapter")

    register_device("broken", broken)
    with pytest.raises(al.DeviceError, match="no adapter"):
        get_device("broken")
    assert "no adapter" in str(probe_devices()["broken"])
    assert "broken" not in [d.name for d in al.devices()]
    reset_devices()
    assert "broken" not in probe_devices()
