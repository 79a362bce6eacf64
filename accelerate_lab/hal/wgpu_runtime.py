"""The native WebGPU runtime under the ``wgpu`` device: adapter, buffer pool, pipeline cache, batching.

One adapter and device per process. Buffers come from a pool keyed by size class and go back to
it when their last view is garbage-collected; a full pool gives back its least recently freed
buffers first, so the sizes a loop is using stay pooled (creating a large GPU buffer costs
milliseconds). Pipelines are compiled once per (shader, entry point, constants). Dispatches are
recorded and encoded into one command submission when data is read back, every ``MAX_PENDING``
dispatches, or once the buffers they hold pass half the pool: recorded work keeps its buffers
alive, so results dropped meanwhile are recycled only after the submission. Uniforms of a
submission share one buffer. wgpu errors (validation, out of memory, a lost device) become
:class:`DeviceError` with the adapter's message.
"""

from __future__ import annotations

import contextlib
import math
import struct
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.device import DeviceStats

__all__ = ["AdapterProfile", "Binding", "Runtime", "Storage", "flat_workgroups", "pack_words"]

MAX_PENDING = 512
_UNIFORM_ALIGN = 256
_POOL_BYTES = 512 * 1024 * 1024
_USAGE_KINDS = ("uniform", "read", "write")


def pack_words(values: Sequence[int | float], size_words: int = 0) -> bytes:
    """Little-endian 32-bit words (ints as i32/u32 bits, floats as f32), zero-padded to ``size_words``."""
    out = bytearray()
    for v in values:
        if isinstance(v, float):
            out += struct.pack("<f", v)
        else:
            out += struct.pack("<I", v & 0xFFFFFFFF)
    out += bytes(4 * max(0, size_words - len(values)))
    return bytes(out)


@dataclass(frozen=True)
class AdapterProfile:
    """What the adapter is and the choices made for it (workgroup sizes, float16, subgroups, limits)."""

    adapter_type: str
    backend: str
    vendor: str
    architecture: str
    device: str
    driver: str
    features: frozenset[str]
    limits: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_software(self) -> bool:
        return self.adapter_type == "CPU"

    @property
    def f16(self) -> bool:
        return "shader-f16" in self.features

    @property
    def subgroups(self) -> bool:
        return "subgroup" in self.features

    @property
    def subgroup_reductions(self) -> bool:
        """Whether workgroup_reduce.wgsl runs its subgroup variant: on CPU adapters that have subgroups
        (lavapipe, 1024 rows of 256: softmax 1.3x, argmax 2x faster), not yet on GPUs, where an H100 ran
        it no faster over 8192-long rows and slower over 256-long ones (softmax 4.1 against 1.1 ms)."""
        return self.subgroups and self.is_software

    @property
    def workgroup(self) -> int:
        """Threads per workgroup for 1-D kernels: 64 on CPU adapters (each thread is a loop), 256 on GPUs."""
        return 64 if self.is_software else 256

    @property
    def matmul_config(self) -> tuple[int, int, int]:
        """(threads per side, outputs per thread per side, K step) of the tiled matmul."""
        return (8, 4, 8) if self.is_software else (16, 8, 8)

    @property
    def matmul_aligned_config(self) -> tuple[int, int, int] | None:
        """(rows, columns, K step) of the block tile of matmul_aligned.wgsl, the aligned fast path; None
        (every matmul runs matmul.wgsl) on a GPU whose wgpu-native cannot compile trusted modules."""
        if self.is_software:
            return (64, 64, 8)
        return (128, 128, 8) if trusted_modules_available() else None

    @property
    def matmul_aligned_options(self) -> dict[str, int]:
        """Override constants of the aligned kernel. On GPUs its K loop unrolled by hand and its module
        compiled without naga's runtime checks: on an H100 that took 4096^3 from 27.5 to 37.6 TFLOP/s
        (the kernel's indices are in range by construction: `_check_aligned_tile` and the alignment
        rules of `_aligned_b` guarantee every access)."""
        return {} if self.is_software else {"UNROLL": 8, "TRUSTED": 1}

    @property
    def max_workgroups(self) -> int:
        return self.limits.get("max-compute-workgroups-per-dimension", 65535)

    @property
    def max_binding(self) -> int:
        return self.limits.get("max-storage-buffer-binding-size", 128 << 20)

    @property
    def max_storage_buffers(self) -> int:
        return self.limits.get("max-storage-buffers-per-shader-stage", 8)

    @property
    def storage_align(self) -> int:
        return self.limits.get("min-storage-buffer-offset-alignment", 256)


class Storage:
    """One GPU buffer (a pooled allocation); views share it. Returned to the pool when unreachable."""

    __slots__ = ("__weakref__", "buffer", "nbytes")

    def __init__(self, buffer: Any, nbytes: int) -> None:
        self.buffer = buffer
        self.nbytes = nbytes


Binding = tuple[Storage, int, int]  # storage, byte offset, byte size


def trusted_modules_available() -> bool:
    """Whether this wgpu-native exports wgpuDeviceCreateShaderModuleTrusted (no runtime checks)."""
    try:
        from wgpu.backends.wgpu_native import _api
    except ImportError:
        return False
    return hasattr(_api.lib, "wgpuDeviceCreateShaderModuleTrusted")


def _size_class(nbytes: int) -> int:
    """Round up to 2**k or 1.5 * 2**k bytes (at least 256): at most 33% waste, few distinct sizes."""
    n = max(256, nbytes)
    power = 1 << (n - 1).bit_length()
    return power * 3 // 4 if n <= power * 3 // 4 else power


@dataclass
class _Dispatch:
    pipeline: Any
    layout: Any
    bindings: list[Binding]
    uniform: bytes
    groups: tuple[int, int]


@dataclass
class _Clear:
    storage: Storage


class Runtime:
    """The wgpu adapter and device, the pool, the pipeline cache and the pending command list."""

    def __init__(self, stats: DeviceStats, limits_override: Mapping[str, int] | None = None) -> None:
        import wgpu

        self.stats = stats
        self._wgpu = wgpu
        self.lost: str | None = None
        with self.guard("requesting a WebGPU adapter"):
            adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if adapter is None:
            raise DeviceError(
                "no WebGPU adapter found: install a Vulkan/Metal/DX12 driver (Linux CI: mesa-vulkan-drivers)"
            )
        info = adapter.info
        wanted = [f for f in ("shader-f16", "subgroup") if f in adapter.features]
        limits = {k: v for k, v in adapter.limits.items() if isinstance(v, int)}
        with self.guard("requesting a WebGPU device"):
            self.device = adapter.request_device_sync(required_features=wanted, required_limits=limits)
        limits.update(limits_override or {})
        self.profile = AdapterProfile(
            adapter_type=str(info.get("adapter_type", "Unknown")),
            backend=str(info.get("backend_type", "Unknown")),
            vendor=str(info.get("vendor", "")),
            architecture=str(info.get("architecture", "")),
            device=str(info.get("device", "")),
            driver=str(info.get("description", "")),
            features=frozenset(wanted),
            limits=limits,
        )
        self._free: dict[int, deque[Any]] = {}
        self._freed_order: OrderedDict[int, int] = OrderedDict()  # id(buffer) -> size, oldest first
        self._pooled_bytes = 0
        self.allocated_bytes = 0
        self.peak_bytes = 0
        self._modules: dict[tuple[str, bool], Any] = {}
        self._pipelines: dict[tuple[object, ...], tuple[Any, Any]] = {}
        self._pending: list[_Dispatch | _Clear] = []
        self._pending_storages: set[int] = set()
        self._pending_bytes = 0
        self.matmul_config = self.profile.matmul_config
        # None: every matmul runs matmul.wgsl
        self.matmul_aligned_config: tuple[int, int, int] | None = self.profile.matmul_aligned_config
        # extra override constants of matmul_aligned.wgsl: UNROLL (1, 4, 8), GROUP (rows of tiles); and
        # TRUSTED (1: compiled without naga's runtime checks)
        self.matmul_aligned_options: dict[str, int] = self.profile.matmul_aligned_options
        # workgroup_reduce.wgsl's subgroup variant (False: its shared-memory tree); True needs the feature
        self.subgroups = self.profile.subgroup_reductions

    # ---- errors -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn wgpu's exceptions into DeviceError naming the step; remember a lost device."""
        if self.lost is not None:
            raise DeviceError(
                f"the wgpu device was lost ({self.lost}); call al.hal.reset_devices() to start a new one"
            )
        try:
            yield
        except DeviceError:
            raise
        except Exception as error:
            if type(error).__module__.startswith("wgpu") or isinstance(error, RuntimeError):
                text = str(error).strip()
                if "lost" in text.lower() or "destroyed" in text.lower():
                    self.lost = text.splitlines()[-1].strip() if text else "device lost"
                raise DeviceError(f"wgpu failed while {what}: {text}") from error
            raise

    # ---- memory -------------------------------------------------------------------------------
    def acquire(self, nbytes: int) -> Storage:
        """A buffer of at least ``nbytes`` (contents undefined), from the pool when one is free."""
        size = _size_class(nbytes)
        if size > self.profile.limits.get("max-buffer-size", 1 << 31):
            raise DeviceError(f"a buffer of {nbytes} bytes exceeds this adapter's max-buffer-size")
        free = self._free.get(size)
        if free:
            buffer = free.pop()
            del self._freed_order[id(buffer)]
            self._pooled_bytes -= size
        else:
            usage = self._wgpu.BufferUsage
            with self.guard(f"allocating {size} bytes"):
                buffer = self.device.create_buffer(
                    size=size, usage=usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
                )
        storage = Storage(buffer, size)
        self.allocated_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.allocated_bytes)
        weakref.finalize(storage, self._release, buffer, size)
        return storage

    def _release(self, buffer: Any, size: int) -> None:
        self.allocated_bytes -= size
        if size > _POOL_BYTES:
            buffer.destroy()
            return
        while self._pooled_bytes + size > _POOL_BYTES:
            old_id, old_size = self._freed_order.popitem(last=False)
            old = self._free[old_size].popleft()  # each size's queue is in freeing order too
            assert id(old) == old_id
            self._pooled_bytes -= old_size
            old.destroy()
        self._free.setdefault(size, deque()).append(buffer)
        self._freed_order[id(buffer)] = size
        self._pooled_bytes += size

    def write(self, storage: Storage, data: bytes, offset: int = 0) -> None:
        pad = (-len(data)) % 4
        with self.guard("uploading data"):
            self.device.queue.write_buffer(storage.buffer, offset, data + bytes(pad))

    def read(self, storage: Storage, offset: int, nbytes: int) -> bytes:
        """Bytes ``[offset, offset + nbytes)`` of a buffer, after all recorded work has run."""
        self.flush()
        start = offset - offset % 4
        size = -(-(offset + nbytes - start) // 4) * 4
        with self.guard("reading data back"):
            data = self.device.queue.read_buffer(storage.buffer, start, size)
        return bytes(data)[offset - start : offset - start + nbytes]

    # ---- pipelines ----------------------------------------------------------------------------
    def pipeline(
        self,
        source: str,
        layout: Sequence[str],
        constants: Mapping[str, int | float] | None = None,
        entry: str = "main",
        trusted: bool = False,
    ) -> tuple[Any, Any]:
        """The compute pipeline for ``source`` / ``entry`` / ``constants`` (compiled once) and its layout;
        ``trusted``: compiled without naga's runtime checks (index clamps, loop bounding), for kernels
        whose every index is in range by construction."""
        constants = dict(constants or {})
        key = (source, entry, tuple(layout), tuple(sorted(constants.items())), trusted)
        found = self._pipelines.get(key)
        if found is not None:
            return found
        wgpu = self._wgpu
        types = {
            "uniform": wgpu.BufferBindingType.uniform,
            "read": wgpu.BufferBindingType.read_only_storage,
            "write": wgpu.BufferBindingType.storage,
        }
        with self.guard(f"compiling the kernel {entry!r}"):
            module = self._modules.get((source, trusted))
            if module is None:
                create = self._trusted_module if trusted else self.device.create_shader_module
                module = self._modules[source, trusted] = create(code=source)
            bgl = self.device.create_bind_group_layout(
                entries=[
                    {"binding": i, "visibility": wgpu.ShaderStage.COMPUTE, "buffer": {"type": types[kind]}}
                    for i, kind in enumerate(layout)
                ]
            )
            pipeline = self.device.create_compute_pipeline(
                layout=self.device.create_pipeline_layout(bind_group_layouts=[bgl]),
                compute={"module": module, "entry_point": entry, "constants": constants},
            )
        self._pipelines[key] = (pipeline, bgl)
        return pipeline, bgl

    def _trusted_module(self, code: str) -> Any:
        """A WGSL module compiled by wgpu-native's wgpuDeviceCreateShaderModuleTrusted with no runtime
        checks (wgpu's Python API does not expose it)."""
        from wgpu.backends.wgpu_native import _api

        ffi, lib = _api.ffi, _api.lib
        text = ffi.new("char[]", code.encode())
        source = ffi.new("WGPUShaderSourceWGSL *")
        source.chain.sType = lib.WGPUSType_ShaderSourceWGSL
        source.code.data, source.code.length = text, len(text) - 1
        descriptor = ffi.new("WGPUShaderModuleDescriptor *")
        descriptor.nextInChain = ffi.cast("WGPUChainedStruct *", source)
        handle = lib.wgpuDeviceCreateShaderModuleTrusted(self.device._internal, descriptor, 0)
        if handle == ffi.NULL:
            raise DeviceError("wgpu-native refused the trusted shader module")
        return _api.GPUShaderModule("", handle, self.device)

    @property
    def pipelines_compiled(self) -> int:
        return len(self._pipelines)

    # ---- recording and submission --------------------------------------------------------------
    def grid(self, workgroups: int) -> tuple[int, int]:
        """``workgroups`` spread over (x, y) so no dimension exceeds the adapter's limit (65,535 usually)."""
        limit = self.profile.max_workgroups
        x = max(1, min(workgroups, limit))
        y = -(-workgroups // x)
        if y > limit:
            raise DeviceError(
                f"{workgroups} workgroups exceed this adapter's dispatch limit ({limit} x {limit})"
            )
        return x, y

    def dispatch(
        self, pipeline: tuple[Any, Any], bindings: Sequence[Binding], uniform: bytes, workgroups: int
    ) -> None:
        """Record one dispatch; kernels flatten (x, y) workgroup ids and skip ids past ``workgroups``."""
        if workgroups <= 0:
            return
        self._pending.append(
            _Dispatch(pipeline[0], pipeline[1], list(bindings), uniform, self.grid(workgroups))
        )
        self.stats.dispatches += 1
        self._hold(*(storage for storage, _, _ in bindings))

    def clear(self, storage: Storage) -> None:
        """Record zero-filling a whole buffer."""
        self._pending.append(_Clear(storage))
        self._hold(storage)

    def _hold(self, *storages: Storage) -> None:
        """Count the buffers recorded work keeps alive; submit once they pass half the pool."""
        for storage in storages:
            if id(storage) not in self._pending_storages:
                self._pending_storages.add(id(storage))
                self._pending_bytes += storage.nbytes
        if len(self._pending) >= MAX_PENDING or self._pending_bytes > _POOL_BYTES // 2:
            self.flush()

    def flush(self) -> None:
        """Encode and submit everything recorded, as one command buffer."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self._pending_storages.clear()
        self._pending_bytes = 0
        device = self.device
        with self.guard("running kernels"):
            uniforms, offsets = self._uniform_block(pending)
            encoder = device.create_command_encoder()
            compute: Any = None
            for item in pending:
                if isinstance(item, _Clear):
                    if compute is not None:
                        compute.end()
                        compute = None
                    encoder.clear_buffer(item.storage.buffer, 0, item.storage.nbytes)
                    continue
                if compute is None:
                    compute = encoder.begin_compute_pass()
                entries = [
                    {
                        "binding": 0,
                        "resource": {
                            "buffer": uniforms,
                            "offset": offsets[id(item)],
                            "size": len(item.uniform),
                        },
                    }
                ]
                entries += [
                    {"binding": i, "resource": {"buffer": s.buffer, "offset": o, "size": n}}
                    for i, (s, o, n) in enumerate(item.bindings, start=1)
                ]
                compute.set_pipeline(item.pipeline)
                compute.set_bind_group(0, device.create_bind_group(layout=item.layout, entries=entries))
                compute.dispatch_workgroups(item.groups[0], item.groups[1], 1)
            if compute is not None:
                compute.end()
            device.queue.submit([encoder.finish()])
        self.stats.submissions += 1

    def _uniform_block(self, pending: Sequence[_Dispatch | _Clear]) -> tuple[Any, dict[int, int]]:
        align = max(_UNIFORM_ALIGN, self.profile.limits.get("min-uniform-buffer-offset-alignment", 256))
        block = bytearray()
        offsets: dict[int, int] = {}
        for item in pending:
            if isinstance(item, _Dispatch):
                offsets[id(item)] = len(block)
                block += item.uniform + bytes((-len(item.uniform)) % align)
        data = bytes(block) or bytes(16)
        return self.device.create_buffer_with_data(data=data, usage=self._wgpu.BufferUsage.UNIFORM), offsets


def flat_workgroups(count: int, per_group: int) -> int:
    """Workgroups needed for ``count`` items at ``per_group`` each."""
    return max(1, math.ceil(count / per_group)) if count else 0
