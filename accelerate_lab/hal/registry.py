"""The device registry: which devices exist, created once each, looked up by name.

The registry is the one piece of global state in ``hal``; :func:`reset_devices` restores the
defaults (tests use it). Devices that need hardware (``wgpu``) or a browser register a factory;
a factory that fails means the device is unavailable, and :func:`probe_devices` says why.

>>> get_device("cpu").name
'cpu'
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.cpu import CpuDevice
from accelerate_lab.hal.device import Device, DeviceInfo

__all__ = ["devices", "get_device", "probe_devices", "register_device", "reset_devices", "unregister_device"]

DeviceFactory = Callable[[], Device]

_lock = threading.Lock()
_factories: dict[str, DeviceFactory] = {}
_instances: dict[str, Device] = {}
_failures: dict[str, str] = {}


def _create_wgpu() -> Device:
    # imported on first use: wgpu (an optional dependency) loads a native library
    from accelerate_lab.hal.wgpu_device import create_wgpu_device

    return create_wgpu_device()


def _defaults() -> dict[str, DeviceFactory]:
    return {"cpu": CpuDevice, "wgpu": _create_wgpu}


def register_device(name: str, factory: DeviceFactory, *, replace: bool = False) -> None:
    """Make ``name`` available (its factory runs on first use); ``ValueError`` if taken unless ``replace``."""
    with _lock:
        if name in _factories and not replace:
            raise ValueError(f"a device named {name!r} is already registered; pass replace=True to swap it")
        _factories[name] = factory
        _instances.pop(name, None)
        _failures.pop(name, None)


def unregister_device(name: str) -> None:
    """Forget a device (a browser that disconnected, for example)."""
    with _lock:
        _factories.pop(name, None)
        _instances.pop(name, None)
        _failures.pop(name, None)


def get_device(device: str | Device) -> Device:
    """The device named ``device`` (created on first use); a `Device` passes through."""
    if not isinstance(device, str):
        return device
    found = _instances.get(device)
    if found is not None:
        return found
    with _lock:
        if device in _instances:
            return _instances[device]
        factory = _factories.get(device)
        if factory is None:
            known = ", ".join(sorted(_factories))
            raise DeviceError(f"unknown device {device!r}: registered devices are {known}")
        if device in _failures:
            raise DeviceError(f"device {device!r} is unavailable: {_failures[device]}")
        try:
            created = factory()
        except Exception as error:
            _failures[device] = f"{type(error).__name__}: {error}"
            raise DeviceError(f"device {device!r} is unavailable: {_failures[device]}") from error
        _instances[device] = created
        return created


def probe_devices() -> dict[str, DeviceInfo | str]:
    """Every registered device: its info when available, else the reason it is not."""
    report: dict[str, DeviceInfo | str] = {}
    for name in sorted(_factories):
        try:
            report[name] = get_device(name).info()
        except DeviceError as error:
            report[name] = str(error)
    return report


def devices() -> list[DeviceInfo]:
    """The devices available in this process, with details (name, kind, adapter, features, limits)."""
    return [info for info in probe_devices().values() if isinstance(info, DeviceInfo)]


def reset_devices() -> None:
    """Back to the default devices, dropping every instance (for tests)."""
    with _lock:
        _instances.clear()
        _failures.clear()
        _factories.clear()
        _factories.update(_defaults())


reset_devices()
