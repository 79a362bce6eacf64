"""The hardware abstraction layer: the device protocol, the registry, and the cpu device."""

from accelerate_lab.hal.cpu import CpuDevice
from accelerate_lab.hal.device import Buffer, Device, DeviceInfo, DeviceStats, MemoryInfo
from accelerate_lab.hal.kernels import FUSED_KERNELS, KERNELS, KernelSpec, kernel_names
from accelerate_lab.hal.registry import (
    devices,
    get_device,
    probe_devices,
    register_device,
    reset_devices,
    unregister_device,
)

__all__ = [
    "FUSED_KERNELS",
    "KERNELS",
    "Buffer",
    "CpuDevice",
    "Device",
    "DeviceInfo",
    "DeviceStats",
    "KernelSpec",
    "MemoryInfo",
    "devices",
    "get_device",
    "kernel_names",
    "probe_devices",
    "register_device",
    "reset_devices",
    "unregister_device",
]
