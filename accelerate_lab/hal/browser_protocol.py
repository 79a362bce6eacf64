"""The wire format between the kernel and the BrowserDevice front end (sans I/O).

A *batch* is one message: JSON content ``{"kind": "batch", "seq", "commands"}`` plus binary buffers
(the upload payloads, referenced by index). Commands, in order: ``upload`` (new buffer from
payload), ``cached`` (new buffer from the browser's weight cache, by content hash; see
:mod:`browser_cache`), ``alloc`` (new zero-filled buffer), ``run`` (a kernel writing into a view),
``free`` and ``download`` (a view's bytes, row-major). The browser answers each batch with one *reply*:
``{"kind": "reply", "seq", "downloads": [{"request", "buffer"}], "error", "memory"}`` plus the
downloaded bytes as binary buffers. Numbers of tensors never travel as JSON, nor as base64.

>>> batch = Batch(seq=1)
>>> batch.alloc(7, 16)
>>> batch.content()["commands"]
[{'op': 'alloc', 'id': 7, 'nbytes': 16}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from accelerate_lab.hal.browser_cache import Deferred
from accelerate_lab.hal.browser_errors import BrowserError, error_from_report
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, storage_dtype

__all__ = ["Batch", "Reply", "ScalarArg", "decode_array", "encode_array", "parse_reply", "view_json"]

ScalarArg = tuple[bool | int | float, np.dtype[np.generic]]
Json = dict[str, object]


def view_json(view: WgpuBuffer) -> Json:
    """A strided view as the browser reads it (offset and strides in elements)."""
    assert view.storage is not None
    return {
        "id": view.storage.buffer,
        "shape": list(view.shape),
        "strides": list(view.strides),
        "offset": view.offset,
        "dtype": view.dtype.name,
    }


def _arg_json(arg: WgpuBuffer | ScalarArg | None) -> Json | None:
    if arg is None:
        return None
    if isinstance(arg, WgpuBuffer):
        return view_json(arg)
    value, dtype = arg
    return {"scalar": float(value) if dtype.kind == "f" else int(value), "dtype": dtype.name}


def _param_json(value: object) -> object:
    """Kernel parameters as JSON values (dtypes by name, tuples as lists)."""
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, tuple | list):
        return [_param_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_array(array: np.ndarray) -> memoryview:
    """``array`` as GPU storage holds it (uint8 and bool widened to 32 bits), without a copy if possible."""
    dense = np.ascontiguousarray(array, dtype=storage_dtype(array.dtype))
    return dense.reshape(-1).data.cast("B")


def decode_array(data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> np.ndarray:
    """The inverse of :func:`encode_array`. A writable ``data`` is used in place, not copied: the buffers
    of a reply that are writable (reassembled chunks) belong to it alone."""
    raw = np.frombuffer(data, dtype=storage_dtype(dtype), count=int(np.prod(shape)))
    if raw.dtype != dtype:
        return raw.astype(dtype).reshape(shape)
    return raw.reshape(shape) if raw.flags.writeable else raw.reshape(shape).copy()


@dataclass
class Batch:
    """Commands collected for one message, with the payloads they reference."""

    seq: int
    commands: list[Json] = field(default_factory=list)
    buffers: list[memoryview] = field(default_factory=list)
    held: dict[str, memoryview | Deferred] = field(default_factory=dict)
    """The bytes of the ``cached`` uploads by hash (or how to make them), sent only if the browser asks."""

    @property
    def payload_bytes(self) -> int:
        """Bytes this batch holds: those it sends, or may send on request (deferred ones are not made yet)."""
        held = sum(b.nbytes for b in self.held.values() if isinstance(b, memoryview))
        return sum(b.nbytes for b in self.buffers) + held

    def upload(self, buffer_id: int, array: np.ndarray) -> None:
        data = encode_array(array)
        self.commands.append(
            {"op": "upload", "id": buffer_id, "nbytes": data.nbytes, "buffer": len(self.buffers)}
        )
        self.buffers.append(data)

    def upload_cached(self, buffer_id: int, data: memoryview | Deferred, digest: str) -> None:
        """An upload of ``data`` (already encoded, or made on request) that the browser may take from its
        cache by ``digest``."""
        self.commands.append({"op": "cached", "id": buffer_id, "nbytes": data.nbytes, "hash": digest})
        self.held[digest] = data

    def alloc(self, buffer_id: int, nbytes: int) -> None:
        self.commands.append({"op": "alloc", "id": buffer_id, "nbytes": nbytes})

    def free(self, buffer_id: int) -> None:
        self.commands.append({"op": "free", "id": buffer_id})

    def run(
        self,
        kernel: str,
        out: WgpuBuffer,
        inputs: Sequence[WgpuBuffer | ScalarArg | None],
        params: Mapping[str, object],
        compute: np.dtype[np.generic] | None,
    ) -> None:
        self.commands.append(
            {
                "op": "run",
                "kernel": kernel,
                "out": view_json(out),
                "inputs": [_arg_json(a) for a in inputs],
                "params": {k: _param_json(v) for k, v in params.items()},
                "compute": None if compute is None else compute.name,
            }
        )

    def download(self, request: int, view: WgpuBuffer) -> None:
        self.commands.append({"op": "download", "request": request, "view": view_json(view)})

    def content(self) -> Json:
        return {"kind": "batch", "seq": self.seq, "commands": list(self.commands)}


@dataclass(frozen=True)
class Reply:
    """A decoded reply: downloaded bytes by request id, the error (if any) and the browser's memory."""

    seq: int
    downloads: dict[int, memoryview]
    error: BrowserError | None
    failed_command: int | None
    memory: Mapping[str, object]


def parse_reply(content: Mapping[str, object], buffers: Sequence[bytes | memoryview]) -> Reply:
    """Decode a reply message; ``ValueError`` for anything that is not one."""
    if content.get("kind") != "reply":
        raise ValueError(f"not a reply: {content.get('kind')!r}")
    downloads: dict[int, memoryview] = {}
    for entry in content.get("downloads") or []:  # type: ignore[attr-defined]
        downloads[int(entry["request"])] = memoryview(buffers[int(entry["buffer"])])
    report = content.get("error")
    error = error_from_report(report) if isinstance(report, Mapping) else None
    failed = int(report["command"]) if isinstance(report, Mapping) else None
    memory = content.get("memory")
    return Reply(int(content["seq"]), downloads, error, failed, memory if isinstance(memory, Mapping) else {})  # type: ignore[call-overload]
