"""Running a kernel on the device of its inputs, recording the graph when gradients are wanted."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from accelerate_lab.errors import DeviceMismatchError
from accelerate_lab.hal.device import Buffer, Device, KernelInput
from accelerate_lab.hal.registry import get_device
from accelerate_lab.tensor import autograd
from accelerate_lab.tensor.autograd import BackwardRule, Node
from accelerate_lab.tensor.dtypes import Scalar
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["Operand", "apply", "device_of"]

logger = logging.getLogger(__name__)
Operand = Tensor | Scalar | None
_NO_PARAMS: Mapping[str, object] = {}


def device_of(inputs: Sequence[Operand]) -> Device:
    """The one device all tensor inputs live on; `DeviceMismatchError` if they differ."""
    device: Device | None = None
    for x in inputs:
        if isinstance(x, Tensor):
            if device is None:
                device = x._device
            elif x._device is not device:
                names = sorted({t.device for t in inputs if isinstance(t, Tensor)})
                raise DeviceMismatchError(
                    f"tensors on different devices ({', '.join(names)}); move them with .to(device) first"
                )
    if device is None:
        raise TypeError("an op needs at least one Tensor input")
    return device


def _run_on_cpu(device: Device, kernel: str, args: list[KernelInput], params: Mapping[str, object]) -> object:
    """A kernel the device lacks: run it on the cpu, visibly (stats and a warning), and upload back."""
    fallbacks = device.stats.cpu_fallbacks
    fallbacks[kernel] = fallbacks.get(kernel, 0) + 1
    if fallbacks[kernel] == 1:
        warnings.warn(f"{device.name} has no {kernel!r} kernel: running it on the cpu", stacklevel=4)
    cpu = get_device("cpu")
    host = [device.download(a) if isinstance(a, Buffer) and not isinstance(a, np.ndarray) else a for a in args]
    out = cpu.run(kernel, host, params)
    if isinstance(out, tuple):
        return tuple(device.upload(np.ascontiguousarray(o)) for o in out)
    return device.upload(np.ascontiguousarray(out))  # type: ignore[arg-type]


def _launch(kernel: str, inputs: Sequence[Operand], params: Mapping[str, object]) -> tuple[Device, object]:
    device = device_of(inputs)
    args: list[KernelInput] = [x._buf if isinstance(x, Tensor) else x for x in inputs]
    if device.supports(kernel):
        return device, device.run(kernel, args, params)
    return device, _run_on_cpu(device, kernel, args, params)


def _record(out: Tensor, kernel: str, inputs: Sequence[Operand], backward: BackwardRule | None) -> None:
    if backward is None or not autograd.is_grad_enabled():
        return
    tensors = tuple(x if isinstance(x, Tensor) else None for x in inputs)
    if any(t is not None and t.requires_grad for t in tensors):
        out.requires_grad = True
        out._node = Node(kernel, tensors, backward)


def apply(
    kernel: str,
    inputs: Sequence[Operand],
    params: Mapping[str, object] = _NO_PARAMS,
    backward: BackwardRule | None = None,
) -> Tensor:
    """Run ``kernel`` on the inputs' device; ``backward`` maps the output's grad to one grad per input."""
    device, buf = _launch(kernel, inputs, params)
    out = Tensor._wrap(buf, device)  # type: ignore[arg-type]
    _record(out, kernel, inputs, backward)
    return out

