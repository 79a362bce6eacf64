"""The cpu device: every catalogued kernel exists, errors are typed, fallbacks are visible."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal import KERNELS, Buffer, CpuDevice, register_device
from accelerate_lab.hal.device import KernelInput


def test_cpu_implements_every_catalogued_kernel() -> None:
    device = CpuDevice()
    assert [name for name in KERNELS if not device.supports(name)] == []


def test_unknown_kernel_is_a_typed_error() -> None:
    with pytest.raises(al.UnsupportedKernelError, match="'fft'"):
        CpuDevice().run("fft", [np.zeros(2)], {})


def test_memory_report_is_real() -> None:
    memory = CpuDevice().memory()
    assert 0 < memory.allocated_bytes <= memory.peak_bytes * 2
    assert memory.limit_bytes is not None and memory.limit_bytes > memory.allocated_bytes


def test_dispatches_are_counted() -> None:
    device = al.get_device("cpu")
    before = device.stats.dispatches
    _ = al.ones([2]) + 1
    assert device.stats.dispatches == before + 1


def test_a_kernel_a_device_lacks_runs_on_the_cpu_visibly() -> None:
    class NoExp(CpuDevice):
        name = "noexp"

        def run(self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object]) -> Buffer:
            if kernel == "exp":
                raise al.UnsupportedKernelError("no exp kernel here")
            return super().run(kernel, inputs, params)

    register_device("noexp", NoExp)
    x = al.tensor([0.0, 1.0]).to("noexp")
    with pytest.warns(UserWarning, match="noexp cannot run .exp."):
        out = al.exp(x)
    assert out.device == "noexp"
    np.testing.assert_allclose(out.to("cpu").numpy(), np.exp([0.0, 1.0]))
    assert al.get_device("noexp").stats.cpu_fallbacks == {"exp": 1}
