"""``browser:webgpu``: the kernel-side proxy of the GPU in the browser that shows the notebook.

Buffers are the strided views of the ``wgpu`` device (:class:`WgpuBuffer`) over a ``Storage`` whose
handle is the browser's buffer id: views (reshape, transpose, broadcast, indexing) cost nothing, and
a buffer is freed in the browser when its last view is garbage-collected here. Work is batched into
command lists (:mod:`browser_protocol`) sent with binary payloads; a batch goes when a download
needs it, when it is large, on :meth:`BrowserProxyDevice.flush`, and after each cell. Weights (uploads
inside :func:`~accelerate_lab.hal.browser_cache.cacheable_uploads`) travel as content hashes first:
the browser keeps them across sessions and asks only for those it lacks (:mod:`browser_cache`); the
bytes of a deferred upload (:meth:`BrowserProxyDevice.upload_deferred`) are made only then.

A running cell cannot receive the browser's replies unless it awaits (see DESIGN.md), so downloads
are awaitable: ``await t.numpy_async()``. ``t.numpy()`` returns at once when the data has arrived
(for example in a later cell) and otherwise requests it and raises :class:`BrowserDataPending`.

>>> sent = []
>>> dev = BrowserProxyDevice(lambda content, buffers: sent.append(content))
>>> buf = dev.upload(np.arange(3, dtype=np.float32))
>>> dev.flush()
>>> [c["op"] for c in sent[0]["commands"]]
['upload']
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelerate_lab.hal import browser_ops
from accelerate_lab.hal.browser_cache import Deferred, content_hash, uploads_cacheable
from accelerate_lab.hal.browser_errors import (
    BrowserDataPending,
    BrowserDeviceLost,
    BrowserError,
    BrowserTimeout,
)
from accelerate_lab.hal.browser_protocol import Batch, ScalarArg, decode_array, encode_array, parse_reply
from accelerate_lab.hal.device import Buffer, DeviceInfo, DeviceStats, KernelInput, MemoryInfo
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, broadcast_view, storage_dtype
from accelerate_lab.hal.wgpu_runtime import Storage

__all__ = ["BrowserProxyDevice", "Transport"]

log = logging.getLogger(__name__)

Transport = Callable[[dict[str, object], list[memoryview]], None]
"""Sends one message (JSON content, binary buffers) to the front end."""


@dataclass
class _Request:
    view: WgpuBuffer
    version: int
    array: np.ndarray | None = None
    error: BrowserError | None = None
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.array is not None or self.error is not None

    def settle(self, array: np.ndarray | None = None, error: BrowserError | None = None) -> None:
        """Record the outcome and wake the awaiting coroutines (the reply may come on another thread)."""
        self.array, self.error = array, error
        for loop, waiter in self.waiters:
            loop.call_soon_threadsafe(_wake, waiter)
        self.waiters.clear()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class BrowserProxyDevice:
    """A :class:`~accelerate_lab.hal.device.Device` whose buffers live in the notebook's browser.

    ``transport`` sends one message; replies come back through :meth:`receive`. ``summary`` is what
    the browser reported (``adapter``, ``features``, ``limits``); ``timeout`` bounds every wait.
    """

    caches_weights = True
    """Whether cacheable uploads go as hashes first (the front end keeps a weight cache)."""

    def __init__(
        self,
        transport: Transport,
        *,
        name: str = "browser:webgpu",
        summary: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
        max_commands: int = 256,
        max_bytes: int = 16 << 20,
    ) -> None:
        self.name = name
        self.stats = DeviceStats()
        self.timeout = timeout
        self._transport = transport
        self._summary = dict(summary or {})
        self._max_commands = max_commands
        self._max_bytes = max_bytes
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._seqs = itertools.count(1)
        self._batch = Batch(seq=0)
        self._freed: list[tuple[int, int]] = []
        self._versions: dict[int, int] = {}
        self._arrived: weakref.WeakKeyDictionary[WgpuBuffer, tuple[int, np.ndarray]] = (
            weakref.WeakKeyDictionary()
        )
        self._requests: dict[int, _Request] = {}
        self._held: dict[int, dict[str, memoryview | Deferred]] = {}  # seq -> what the browser may ask for
        self.cache_sent_bytes = 0
        """Bytes of cacheable uploads the browser asked for (its cache lacked them)."""
        self._failure: BrowserError | None = None
        self._closed: str | None = None
        self.allocated_bytes = 0
        self.peak_bytes = 0
        self.browser_memory: Mapping[str, object] = {}

    # ---- what it is -----------------------------------------------------------------------------
    @property
    def f16(self) -> bool:
        return "shader-f16" in self._summary.get("features", ())

    def info(self) -> DeviceInfo:
        adapter = self._summary.get("adapter", {})
        parts = [adapter.get(k, "") for k in ("vendor", "architecture", "device", "description")]
        return DeviceInfo(
            name=self.name,
            kind="browser",
            description="WebGPU in the notebook's browser: "
            + (" / ".join(p for p in parts if p) or "adapter not disclosed"),
            features=tuple(self._summary.get("features", ())),
            limits={k: int(v) for k, v in self._summary.get("limits", {}).items()},
            is_fallback=bool(adapter.get("is_fallback", False)),
        )

    def memory(self) -> MemoryInfo:
        """Bytes of live browser buffers as the kernel counts them (the widget shows the browser's count)."""
        return MemoryInfo(
            self.allocated_bytes, self.peak_bytes, self._summary.get("limits", {}).get("maxBufferSize")
        )

    def supports(self, kernel: str) -> bool:
        return kernel in browser_ops.BROWSER_KERNELS

    # ---- buffers --------------------------------------------------------------------------------
    def _new_storage(self, nbytes: int) -> Storage:
        handle = next(self._ids)
        storage = Storage(handle, nbytes)
        self.allocated_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.allocated_bytes)
        weakref.finalize(storage, self._freed.append, (handle, nbytes))  # sent with the next batch
        return storage

    def new_zeros(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> WgpuBuffer:
        """A dense zero-filled buffer."""
        nbytes = int(np.prod(shape)) * storage_dtype(dtype).itemsize
        storage = self._new_storage(nbytes)
        with self._lock:
            self._check()
            self._batch.alloc(storage.buffer, nbytes)
        return WgpuBuffer(tuple(shape), np.dtype(dtype), storage)

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> Buffer:
        return self.new_zeros(shape, dtype)

    def free(self, buffer: Buffer) -> None:
        """Nothing to do at once: the browser frees a buffer when its last view here is collected."""

    def upload(self, array: np.ndarray, *, cacheable: bool | None = None) -> Buffer:
        """A new buffer holding ``array``; ``cacheable`` (default: inside ``cacheable_uploads()``) sends
        its hash first, and its bytes only if the browser's weight cache lacks them."""
        array = np.asarray(array)
        storage = self._new_storage(array.size * storage_dtype(array.dtype).itemsize)
        cached = self.caches_weights and (uploads_cacheable() if cacheable is None else cacheable)
        data = encode_array(array) if cached else None
        with self._lock:
            self._check()
            if data is not None:
                self._batch.upload_cached(storage.buffer, data, content_hash(array, data))
            else:
                self._batch.upload(storage.buffer, array)
            self._maybe_flush()
        return WgpuBuffer(tuple(array.shape), array.dtype, storage)

    def upload_deferred(
        self, shape: tuple[int, ...], dtype: np.dtype[np.generic], digest: str, make: Callable[[], np.ndarray]
    ) -> WgpuBuffer:
        """A new buffer holding the array ``make()`` returns (of ``shape`` and ``dtype``, whose encoded
        bytes hash to ``digest``), called only if the browser's weight cache lacks them."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * storage_dtype(dtype).itemsize
        storage = self._new_storage(nbytes)

        def encoded() -> memoryview:
            array = make()
            if array.shape != tuple(shape) or array.dtype != dtype:
                raise ValueError(f"made {array.dtype}{array.shape}, not the {dtype}{tuple(shape)} announced")
            return encode_array(array)

        with self._lock:
            self._check()
            self._batch.upload_cached(storage.buffer, Deferred(nbytes, encoded), digest)
            self._maybe_flush()
        return WgpuBuffer(tuple(shape), dtype, storage)

    # ---- kernels (called by browser_ops) --------------------------------------------------------
    def submit_run(
        self,
        kernel: str,
        shape: tuple[int, ...],
        dtype: np.dtype[np.generic],
        inputs: Sequence[WgpuBuffer | ScalarArg | None],
        params: Mapping[str, object],
        compute: np.dtype[np.generic] | None,
    ) -> WgpuBuffer:
        """A new dense buffer of ``shape``/``dtype`` that ``kernel`` fills from ``inputs``."""
        out = self.new_zeros(shape, dtype)
        with self._lock:
            self._batch.run(kernel, out, inputs, params, compute)
            self.stats.dispatches += 1
            self._maybe_flush()
        return out

    def write_view(self, target: WgpuBuffer, value: WgpuBuffer | bool | int | float) -> None:
        """Copy ``value`` (a buffer broadcastable to ``target``, or a number) into the view ``target``."""
        assert target.storage is not None
        if isinstance(value, WgpuBuffer):
            while len(value.shape) > len(target.shape) and value.shape[0] == 1:
                value = value.view(value.shape[1:], value.strides[1:], value.offset)
            if value.storage is target.storage:
                value = self.dense_copy(value)
            source: WgpuBuffer | ScalarArg = broadcast_view(value, target.shape)
        else:
            source = (np.array(value, dtype=target.dtype).item(), target.dtype)
        with self._lock:
            self._batch.run("copy", target, [source], {}, None)
            self._versions[target.storage.buffer] = self._versions.get(target.storage.buffer, 0) + 1
            self._maybe_flush()

    def dense_copy(self, view: WgpuBuffer) -> WgpuBuffer:
        """A dense copy of a strided view."""
        return self.submit_run("copy", view.shape, view.dtype, [view], {}, None)

    def run(self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object]) -> Buffer:
        self._check()
        return browser_ops.handle(self, kernel, inputs, params)

    # ---- sending --------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._closed is not None:
            raise BrowserDeviceLost(
                f"{self.name} is disconnected ({self._closed}); show al.BrowserDevice() again"
            )
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _maybe_flush(self) -> None:
        if len(self._batch.commands) >= self._max_commands or self._batch.payload_bytes >= self._max_bytes:
            self.flush()

    def flush(self) -> None:
        """Send the commands collected so far (and the frees of collected buffers) as one batch."""
        with self._lock:
            while self._freed:
                handle, nbytes = self._freed.pop()
                self.allocated_bytes -= nbytes
                self._batch.free(handle)
            if not self._batch.commands:
                return
            batch, self._batch = self._batch, Batch(seq=0)
            batch.seq = next(self._seqs)
            self.stats.submissions += 1
            if batch.held:
                self._held[batch.seq] = batch.held
        self._transport(batch.content(), batch.buffers)

    # ---- receiving ------------------------------------------------------------------------------
    def receive(self, content: Mapping[str, object], buffers: Sequence[bytes | memoryview]) -> None:
        """Handle one message from the front end: a reply (downloads, errors, memory) or a need."""
        if content.get("kind") == "need":
            self._fill(int(content["seq"]), content["hashes"])  # type: ignore[call-overload, arg-type]
            return
        reply = parse_reply(content, buffers)
        self.browser_memory = reply.memory
        with self._lock:
            self._held.pop(reply.seq, None)
        if reply.error is not None:  # a failed batch's data may be wrong: never hand it out
            log.warning(
                "%s: batch %d failed at command %s: %s",
                self.name,
                reply.seq,
                reply.failed_command,
                reply.error,
            )
            self.fail(reply.error)
            return
        with self._lock:
            for request_id, data in reply.downloads.items():
                request = self._requests.pop(request_id, None)
                if request is None:
                    continue
                view = request.view
                request.settle(decode_array(data, view.shape, view.dtype))
                assert view.storage is not None and request.array is not None
                if self._versions.get(view.storage.buffer, 0) == request.version:
                    self._arrived[view] = (request.version, request.array)

    def _fill(self, seq: int, hashes: Sequence[str]) -> None:
        """Send the bytes of the cacheable uploads of batch ``seq`` that the browser's cache lacks, in
        fills of at most ``max_bytes`` (or one larger upload alone; deferred ones made fill by fill),
        the last one without ``more``."""
        with self._lock:
            held = self._held.get(seq, {})
        part: list[tuple[str, memoryview]] = []
        size = 0
        for digest in hashes:
            data = self._made(digest, held.get(digest))
            if data is None:
                continue
            if part and size + data.nbytes > self._max_bytes:
                self._send_fill(seq, part, more=True)
                part, size = [], 0
            part.append((digest, data))
            size += data.nbytes
        self._send_fill(seq, part, more=False)

    def _made(self, digest: str, data: memoryview | Deferred | None) -> memoryview | None:
        """The bytes of a held upload; None where it is not held (the browser asks only for hashes of its
        batch: one missing here fails that batch there) or its bytes cannot be made as announced."""
        if not isinstance(data, Deferred):
            return data
        try:
            return data.make()
        except Exception as error:  # a changed weights file: never send bytes of another hash
            log.warning("%s: weight %s… not sent: %s", self.name, digest[:12], error)
            return None

    def _send_fill(self, seq: int, part: list[tuple[str, memoryview]], more: bool) -> None:
        with self._lock:
            self.cache_sent_bytes += sum(data.nbytes for _, data in part)
        content = {"kind": "fill", "seq": seq, "hashes": [digest for digest, _ in part], "more": more}
        self._transport(content, [data for _, data in part])

    def fail(self, error: BrowserError) -> None:
        """Pending downloads fail with ``error``, and so does the next call (a batch went wrong)."""
        with self._lock:
            self._failure = error
            for request in self._requests.values():
                request.settle(error=error)
            self._requests.clear()

    def disconnect(self, reason: str) -> None:
        """The front end went away: pending downloads fail, later calls raise `BrowserDeviceLost`."""
        self._closed = reason
        with self._lock:
            self._held.clear()
            for request in self._requests.values():
                request.settle(error=BrowserDeviceLost(f"{self.name} disconnected: {reason}"))
            self._requests.clear()

    # ---- downloads ------------------------------------------------------------------------------
    def _cached(self, view: WgpuBuffer) -> np.ndarray | None:
        assert view.storage is not None
        found = self._arrived.get(view)
        if found is not None and found[0] == self._versions.get(view.storage.buffer, 0):
            return found[1].copy()
        return None

    def _request(self, view: WgpuBuffer) -> _Request:
        assert view.storage is not None
        for request in self._requests.values():
            if request.view is view:
                return request
        request = _Request(view, self._versions.get(view.storage.buffer, 0))
        request_id = next(self._ids)
        with self._lock:
            self._check()
            self._requests[request_id] = request
            self._batch.download(request_id, view)
        self.flush()
        return request

    def download(self, buffer: Buffer) -> np.ndarray:
        """The data, when it has arrived; else requests it and raises `BrowserDataPending`."""
        assert isinstance(buffer, WgpuBuffer)
        found = self._cached(buffer)
        if found is not None:
            return found
        self._request(buffer)
        raise BrowserDataPending(
            f"the data of this {self.name} tensor (shape {buffer.shape}, {buffer.dtype.name}) is in the "
            "browser, "
            "and a cell that runs synchronously cannot receive it: use `await t.numpy_async()` in this cell, "
            "or call t.numpy() again in a later cell (the download has been requested)"
        )

    async def download_async(self, buffer: Buffer, timeout: float | None = None) -> np.ndarray:
        """The data of ``buffer``, awaiting the browser's reply (``BrowserTimeout`` after ``timeout`` s)."""
        assert isinstance(buffer, WgpuBuffer)
        found = self._cached(buffer)
        if found is not None:
            return found
        request = self._request(buffer)
        if not request.done:  # the reply resolves the future: no polling, no added latency
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            with self._lock:
                if not request.done:
                    request.waiters.append((loop, waiter))
            limit = self.timeout if timeout is None else timeout
            try:
                if not request.done:
                    await asyncio.wait_for(waiter, limit)
            except TimeoutError:
                raise BrowserTimeout(
                    f"{self.name} did not answer within {limit:g} s: is the BrowserDevice widget still shown "
                    "in an open browser tab? (re-run the cell that shows it)"
                ) from None
        if request.error is not None:
            self._failure = None
            raise request.error
        assert request.array is not None
        return request.array.copy()
