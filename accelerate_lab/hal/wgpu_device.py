"""The native WebGPU device (``"wgpu"``): every kernel of the catalogue as WGSL through wgpu-py.

Layout kernels (``reshape`` of dense data, ``transpose``, ``broadcast_to``, ``getitem``) return
strided views without running anything; ``setitem`` writes in place through the view. Elementwise
kernels and matmuls are recorded lazily and fused (:mod:`accelerate_lab.hal.fusion`). dtypes with
no WGSL type (float64, and int64 arithmetic) and float16 on adapters without ``shader-f16`` run on
the cpu, visibly: ``stats.cpu_fallbacks`` counts them and a ``RuntimeWarning`` names the reason.

>>> import accelerate_lab as al
>>> (al.tensor([1.0, 2.0], device="wgpu") * 3).tolist()  # doctest: +SKIP
[3.0, 6.0]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from accelerate_lab.errors import DeviceError, UnsupportedKernelError
from accelerate_lab.hal import wgpu_kernels
from accelerate_lab.hal.cpu import CpuDevice
from accelerate_lab.hal.device import Buffer, DeviceInfo, DeviceStats, KernelInput, MemoryInfo
from accelerate_lab.hal.fusion import LazyGraph
from accelerate_lab.hal.kernels import KERNELS
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, broadcast_view, row_major, span, storage_dtype
from accelerate_lab.hal.wgpu_codegen import ElementwiseProgram, Reg, Unsupported
from accelerate_lab.hal.wgpu_elementwise import run_program
from accelerate_lab.hal.wgpu_ops import OPS
from accelerate_lab.hal.wgpu_runtime import Runtime, Storage

__all__ = ["WgpuDevice", "create_wgpu_device"]

_DTYPES = frozenset({"float32", "float16", "int32", "int64", "uint8", "bool", "float64"})
_SHOWN_LIMITS = (
    "max-buffer-size",
    "max-storage-buffer-binding-size",
    "max-storage-buffers-per-shader-stage",
    "max-compute-workgroup-storage-size",
    "max-compute-invocations-per-workgroup",
    "max-compute-workgroups-per-dimension",
    "min-storage-buffer-offset-alignment",
)


class WgpuDevice:
    """Tensors in GPU buffers, kernels as WGSL compute pipelines on the process's WebGPU adapter."""

    name = "wgpu"

    def __init__(self, limits_override: Mapping[str, int] | None = None) -> None:
        self.stats = DeviceStats()
        self.runtime = Runtime(self.stats, limits_override)
        profile = self.runtime.profile
        self.f16 = profile.f16
        self.workgroup = profile.workgroup
        self.max_operands = min(profile.max_storage_buffers, 16)
        self.graph = LazyGraph(self)
        self._cpu = CpuDevice()
        self._warned: set[tuple[str, str]] = set()
        self._error: Storage | None = None
        self._error_armed = False

    # ---- description ----------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        p = self.runtime.profile
        arch = f" {p.architecture}" if p.architecture else ""
        return DeviceInfo(
            name=self.name,
            kind="gpu",
            description=(
                f"{p.adapter_type} adapter {p.device!r} via {p.backend} (vendor {p.vendor or '?'}{arch}; "
                f"driver {p.driver or '?'}); workgroup {self.workgroup}, float16 {'on' if p.f16 else 'off'}, "
                f"subgroups {'available' if p.subgroups else 'absent'}"
            ),
            features=tuple(sorted(p.features)),
            limits={k: p.limits[k] for k in _SHOWN_LIMITS if k in p.limits},
            is_fallback=p.is_software,
        )

    def memory(self) -> MemoryInfo:
        return MemoryInfo(self.runtime.allocated_bytes, self.runtime.peak_bytes, None)

    def supports(self, kernel: str) -> bool:
        return kernel in KERNELS

    # ---- buffers --------------------------------------------------------------------------------
    def new_dense(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> WgpuBuffer:
        """A dense buffer with uninitialised storage."""
        if dtype.name not in _DTYPES:
            raise TypeError(f"the wgpu device has no dtype {dtype.name}")
        return WgpuBuffer(
            shape, dtype, self.runtime.acquire(math.prod(shape) * storage_dtype(dtype).itemsize)
        )

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> Buffer:
        buf = self.new_dense(tuple(shape), np.dtype(dtype))
        assert buf.storage is not None
        self.runtime.clear(buf.storage)
        return buf

    def free(self, buffer: Buffer) -> None:
        """Drop this buffer's hold on its storage (pooled again once no view uses it)."""
        assert isinstance(buffer, WgpuBuffer)
        buffer.storage = None
        buffer.lazy = None

    def upload(self, array: np.ndarray) -> Buffer:
        array = np.asarray(array)
        buf = self.new_dense(array.shape, array.dtype)
        if array.size:
            assert buf.storage is not None
            self.runtime.write(
                buf.storage, np.ascontiguousarray(array, dtype=storage_dtype(array.dtype)).tobytes()
            )
        return buf

    def download(self, buffer: Buffer) -> np.ndarray:
        assert isinstance(buffer, WgpuBuffer)
        buf = self.graph.concrete(buffer)
        self._raise_kernel_errors()
        if buf.size == 0:
            return np.zeros(buf.shape, buf.dtype)
        if buf.storage is None:
            raise DeviceError("this wgpu buffer was freed; its tensor can no longer be read")
        lo, hi = span(buf.shape, buf.strides, buf.offset)
        item = buf.itemsize
        flat = np.frombuffer(
            self.runtime.read(buf.storage, lo * item, (hi - lo + 1) * item), storage_dtype(buf.dtype)
        )
        view = np.lib.stride_tricks.as_strided(
            flat[buf.offset - lo :], buf.shape, [s * item for s in buf.strides]
        )
        return np.array(view, dtype=buf.dtype)

    def dense(self, buf: WgpuBuffer) -> WgpuBuffer:
        """``buf`` computed and row-major (a copy when it is a strided view)."""
        buf = self.graph.concrete(buf)
        return buf if buf.is_dense() else self.copy_dense(buf)

    def copy_dense(self, buf: WgpuBuffer) -> WgpuBuffer:
        """A fresh row-major copy."""
        out = self.new_dense(buf.shape, buf.dtype)
        self.write_view(out, self.graph.concrete(buf))
        return out

    def write_view(self, target: WgpuBuffer, value: WgpuBuffer | np.generic) -> None:
        """Store ``value`` (broadcast, converted to the target's dtype) through the view ``target``."""
        program = ElementwiseProgram(target.shape, self.f16)
        reg = (
            program.scalar(value)
            if isinstance(value, np.generic)
            else program.load(broadcast_view(value, target.shape))
        )
        program.store(target, reg)
        self.run_program(program)

    # ---- hooks for fusion and kernels --------------------------------------------------------------
    def run_program(self, program: ElementwiseProgram) -> None:
        run_program(self.runtime, program, self.workgroup)

    def run_matmul(
        self,
        a: WgpuBuffer,
        b: WgpuBuffer,
        out: WgpuBuffer,
        epilogue: ElementwiseProgram | None,
        result: Reg | None,
    ) -> None:
        wgpu_kernels.matmul(self, a, b, out, epilogue, result)

    def error_flag(self) -> Storage:
        """The buffer kernels set when their input was invalid (embedding ids out of range)."""
        if self._error is None:
            self._error = self.runtime.acquire(16)
            self.runtime.clear(self._error)
        self._error_armed = True
        return self._error

    def _raise_kernel_errors(self) -> None:
        if not self._error_armed or self._error is None:
            return
        flag = int(np.frombuffer(self.runtime.read(self._error, 0, 4), np.uint32)[0])
        self._error_armed = False
        if flag:
            self.runtime.clear(self._error)
            raise IndexError(
                "an embedding on the wgpu device had ids outside [0, num_embeddings); their rows are zeros. "
                "Check the ids (e.g. ids.max()) against the table's first dimension"
            )

    # ---- kernels --------------------------------------------------------------------------------
    def run(self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object]) -> Buffer:
        spec = KERNELS.get(kernel)
        if spec is None:
            raise UnsupportedKernelError(f"the wgpu device has no kernel {kernel!r}")
        handler: Callable[[WgpuDevice, str, Sequence[Any], Mapping[str, Any]], WgpuBuffer] = OPS[spec.family]
        try:
            return handler(self, kernel, inputs, params)
        except Unsupported as why:
            return self._on_cpu(kernel, inputs, params, str(why))

    def _on_cpu(
        self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object], reason: str
    ) -> Buffer:
        """Run a kernel with numpy, counted in ``stats.cpu_fallbacks`` and warned about once per reason."""
        fallbacks = self.stats.cpu_fallbacks
        fallbacks[kernel] = fallbacks.get(kernel, 0) + 1
        if (kernel, reason) not in self._warned:
            self._warned.add((kernel, reason))
            warnings.warn(f"wgpu runs {kernel!r} on the cpu: {reason}", RuntimeWarning, stacklevel=6)
        host = [self.download(x) if isinstance(x, WgpuBuffer) else x for x in inputs]
        if kernel == "setitem":
            target = inputs[0]
            assert isinstance(target, WgpuBuffer)
            updated = self._cpu.run(kernel, [np.array(host[0]), *host[1:]], params)
            self.graph.before_write(target.storage)
            staged = self.upload(np.asarray(updated))
            assert isinstance(staged, WgpuBuffer)
            self.write_view(target, staged)
            return target
        out = self._cpu.run(kernel, host, params)
        assert isinstance(out, np.ndarray)
        return self.upload(np.ascontiguousarray(out))

    def view_or_copy(self, x: WgpuBuffer, shape: tuple[int, ...]) -> WgpuBuffer:
        """``x`` reshaped: a view of dense data, else of a dense copy."""
        x = self.dense(x)
        return x.view(shape, row_major(shape), x.offset)


def create_wgpu_device() -> WgpuDevice:
    """The registry's factory: fails with a clear message when wgpu or an adapter is missing."""
    try:
        import wgpu  # noqa: F401
    except ImportError as error:
        raise DeviceError("the wgpu device needs `pip install accelerate_lab[gpu]` (wgpu-py)") from error
    return WgpuDevice()
