"""Running a kernel on the device of its inputs, recording the graph when gradients are wanted."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from accelerate_lab.errors import DeviceMismatchError, UnsupportedKernelError
from accelerate_lab.hal.device import Buffer, Device, KernelInput
from accelerate_lab.hal.registry import get_device
from accelerate_lab.tensor import autograd
from accelerate_lab.tensor.autograd import BackwardRule, Node
from accelerate_lab.tensor.dtypes import Scalar
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["Operand", "apply", "device_of"]

Operand = Tensor | Scalar | None
_NO_PARAMS: Mapping[str, object] = {}


def _mismatch(inputs: Sequence[Operand]) -> DeviceMismatchError:
    names = sorted({t.device for t in inputs if isinstance(t, Tensor)})
    return DeviceMismatchError(
        f"tensors on different devices ({', '.join(names)}); move them with .to(device) first"
    )


def device_of(inputs: Sequence[Operand]) -> Device:
    """The one device all tensor inputs live on; `DeviceMismatchError` if they differ."""
    devices = {x._device for x in inputs if isinstance(x, Tensor)}
    if len(devices) > 1:
        raise _mismatch(inputs)
    if not devices:
        raise TypeError("an op needs at least one Tensor input")
    return devices.pop()


def _run_on_cpu(
    device: Device, kernel: str, args: list[KernelInput], params: Mapping[str, object], reason: str
) -> Buffer:
    """A kernel the device cannot run: run it on the cpu, visibly (stats and a warning), and upload back."""
    fallbacks = device.stats.cpu_fallbacks
    fallbacks[kernel] = fallbacks.get(kernel, 0) + 1
    if fallbacks[kernel] == 1:
        warnings.warn(f"{device.name} cannot run {kernel!r} ({reason}): running it on the cpu", stacklevel=4)
    cpu = get_device("cpu")
    host = [
        device.download(a) if isinstance(a, Buffer) and not isinstance(a, np.ndarray) else a for a in args
    ]
    return device.upload(np.ascontiguousarray(cpu.run(kernel, host, params)))


def apply(
    kernel: str,
    inputs: Sequence[Operand],
    params: Mapping[str, object] = _NO_PARAMS,
    backward: BackwardRule | None = None,
) -> Tensor:
    """Run ``kernel`` on the inputs' device; ``backward`` maps the output's grad to one grad per input.

    A device that raises `UnsupportedKernelError` (no such kernel, or not for these dtypes) has the
    kernel run on the cpu instead, counted in ``device.stats.cpu_fallbacks`` and warned about once.
    """
    device: Device | None = None
    args: list[KernelInput] = []
    wants_grad = False
    for x in inputs:  # one pass: device check, buffers, grad flag (this loop is the per-op overhead)
        if isinstance(x, Tensor):
            if device is None:
                device = x._device
            elif x._device is not device:
                raise _mismatch(inputs)
            args.append(x._buf)
            wants_grad = wants_grad or x.requires_grad
        else:
            args.append(x)
    if device is None:
        raise TypeError(f"{kernel} needs at least one Tensor input")
    try:
        buf = device.run(kernel, args, params)
    except UnsupportedKernelError as error:
        buf = _run_on_cpu(device, kernel, args, params, str(error))
    out = Tensor._wrap(buf, device)
    if wants_grad and backward is not None and autograd.is_grad_enabled():
        out.requires_grad = True
        out._node = Node(kernel, tuple(x if isinstance(x, Tensor) else None for x in inputs), backward)
    return out
