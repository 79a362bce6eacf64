"""``BrowserDevice``: the anywidget that connects the notebook's browser GPU to the kernel.

Showing it starts WebGPU and WebNN in the browser (the bundle in ``accelerate_lab/static``, built
from ``widget/``); once the browser reports back (after the cell that shows it), ``browser:webgpu``
is a device of the kernel, and so is ``browser:webnn`` where the browser has a WebNN context.
Results come back with ``await t.numpy_async()``. Messages of any size cross in chunks that fit
Jupyter's websocket message limit (:mod:`accelerate_lab.hal.browser_chunks`); where the Jupyter server
runs accelerate_lab's transfer extension on this machine (a probe at connect says), buffers of
:data:`HTTP_BYTES` or more go through it as spool files instead (:mod:`.transfer_server`), much faster.

>>> import accelerate_lab as al
>>> dev = al.BrowserDevice()
>>> dev.status  # no browser has shown it yet
'waiting'
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from accelerate_lab.hal.browser_chunks import Assembler, split
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.hal.browser_errors import BrowserTimeout, BrowserTransferError, NoWebGPUError
from accelerate_lab.hal.browser_webnn import BrowserWebnnDevice
from accelerate_lab.hal.registry import register_device, unregister_device
from accelerate_lab.hal.wgpu_buffer import storage_dtype
from accelerate_lab.widgets.transfer_spool import Spool

__all__ = ["HTTP_BYTES", "BrowserDevice"]

HTTP_BYTES = 1 << 20
"""Buffers at least this large take the HTTP path when it works (``widget/src/transfer.ts`` agrees)."""

_STATIC = Path(__file__).resolve().parent.parent / "static"
_FAILED = {"no-webgpu", "error", "lost"}
_STARTED = {"ready", "no-webgpu", "error"}


def _bundle(name: str) -> Path | str:
    path = _STATIC / name
    if path.exists():
        return path
    # the widget still displays, and says what is missing instead of failing silently
    message = f"accelerate_lab's widget bundle is missing ({path}): run `bash scripts/build_widget.sh .venv`"
    return (
        f"export default {{ render({{ el }}) {{ el.textContent = {message!r}; }} }};"
        if name.endswith(".js")
        else ""
    )


class BrowserDevice(anywidget.AnyWidget):
    """The GPU of the browser showing this notebook, as the kernel device ``browser:webgpu``.

    ``status`` goes ``waiting`` -> ``connecting`` -> ``ready`` (or ``no-webgpu`` / ``error`` / ``lost``,
    with ``message`` saying why). ``adapter``, ``features``, ``limits``, ``webnn`` and ``memory``
    mirror what the browser reports; ``memory`` updates live. ``webnn_device`` is ``browser:webnn``
    once the browser has reported a WebNN context (``webnn["available"]``). Model weights stay in the
    browser's weight cache across sessions (:mod:`accelerate_lab.hal.browser_cache`): ``cache`` is what
    it holds, ``cache_limit`` its size cap in bytes (least recently used weights go past it), and
    :meth:`clear_cache` (or the view's button) empties it. Batches run in a Web Worker, so the page stays
    responsive; the view shows a long one's progress, and :meth:`cancel` (or the view's button) stops it.
    ``transfer`` says how large buffers travel: ``"http"`` (the Jupyter server's transfer extension, found
    by a probe at connect; ``http=False`` skips it) or ``"comm"`` (``transfer_message`` says why); setting
    it to ``"comm"`` sends everything through the comm.
    """

    _esm = _bundle("browser_device.js")
    _css = _bundle("browser_device.css")
    status = traitlets.Unicode("waiting").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    adapter = traitlets.Dict().tag(sync=True)
    features = traitlets.List(traitlets.Unicode()).tag(sync=True)
    limits = traitlets.Dict().tag(sync=True)
    webnn = traitlets.Dict().tag(sync=True)
    memory = traitlets.Dict().tag(sync=True)
    cache = traitlets.Dict().tag(sync=True)
    cache_limit = traitlets.Int(1 << 30).tag(sync=True)
    transfer = traitlets.Unicode("").tag(sync=True)
    transfer_message = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self, name: str = "browser:webgpu", timeout: float = 30.0, *, http: bool = True, **kwargs: Any
    ) -> None:
        self.device_name = name
        self.timeout = timeout
        self.device: BrowserProxyDevice | None = None
        self.webnn_device: BrowserWebnnDevice | None = None
        self._shell: Any = None
        self._transfers = itertools.count(1)
        self._sending = threading.Lock()  # one transfer's messages go back to back
        self._incoming = Assembler(timeout)
        self._http = http
        self._spool: Spool | None = None
        self._probe: tuple[bytes, str, str] | None = None  # the probe's bytes, GET and PUT tokens
        self._slots: dict[int, list[str]] = {}  # batch seq -> tokens its downloads may be PUT to
        super().__init__(**kwargs)
        self.on_msg(self._on_msg)
        self.observe(self._on_status, names="status")
        self._shell = _ipython()
        if self._shell is not None:
            # batches left at the end of a cell go out then, so the browser computes between cells
            self._shell.events.register("post_run_cell", self._flush_after_cell)

    # ---- connection -----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Whether ``browser:webgpu`` is registered and usable."""
        return self.device is not None

    def _on_status(self, change: dict[str, Any]) -> None:
        if change["new"] == "ready":
            summary = {
                "adapter": dict(self.adapter),
                "features": list(self.features),
                "limits": dict(self.limits),
            }
            self.device = BrowserProxyDevice(
                self._send_batch, name=self.device_name, summary=summary, timeout=self.timeout
            )
            device = self.device
            register_device(self.device_name, lambda: device, replace=True)
        elif change["new"] in _FAILED:
            self._drop(self.message or change["new"])
        if change["new"] in _STARTED and self.webnn.get("available") and self.webnn_device is None:
            # WebNN runs without WebGPU; only the ops it lacks need WebGPU
            summary = {"webnn": dict(self.webnn), "webgpu": change["new"] == "ready"}
            webnn = BrowserWebnnDevice(self._send_batch, summary=summary, timeout=self.timeout)
            self.webnn_device = webnn
            register_device(webnn.name, lambda: webnn, replace=True)

    def _drop(self, reason: str) -> None:
        if self.device is not None:
            self.device.disconnect(reason)
            unregister_device(self.device_name)
            self.device = None

    # ---- the HTTP transfer path ----------------------------------------------------------------------
    def _start_probe(self) -> None:
        """Offer a small random file and a slot; the front end fetches one and PUTs it to the other."""
        if not self._http:
            self.transfer, self.transfer_message = "comm", "the HTTP path was turned off (http=False)"
            return
        try:
            self._spool = Spool()
        except OSError as error:
            self.transfer, self.transfer_message = "comm", f"no transfer spool: {error}"
            return
        data = secrets.token_bytes(64)
        self._probe = (data, self._spool.offer(data), self._spool.slot(len(data)))
        self.transfer, self.transfer_message = "probing", ""
        self._send_batch({"kind": "probe", "get": self._probe[1], "put": self._probe[2]}, [])

    def _probed(self, reply: Mapping[str, object]) -> None:
        if self._probe is None or self._spool is None:
            return
        (data, get, put), self._probe = self._probe, None
        why = str(reply.get("message") or "the bytes the browser sent back differ from the probe's")
        try:
            same = bool(reply.get("ok")) and bytes(self._spool.take(put)) == data
        except FileNotFoundError:
            same, why = False, "the server wrote no file to this kernel's spool (another machine?)"
        self._spool.discard([get, put])
        if "404" in why:
            why = "the Jupyter server lacks accelerate_lab's transfer extension"
        self.transfer, self.transfer_message = ("http", "") if same else ("comm", why)

    def _spool_out(
        self, spool: Spool, content: dict[str, object], buffers: list[memoryview]
    ) -> tuple[dict[str, object], list[memoryview]]:
        """Large buffers as spool tokens; a WebGPU batch's large downloads get slots to be PUT to.
        ``OSError`` (the spool is full) leaves no file behind."""
        spooled: dict[str, str] = {}
        slots: list[str] = []
        try:
            for index, buffer in enumerate(buffers):
                if buffer.nbytes >= HTTP_BYTES:
                    spooled[str(index)] = spool.offer(buffer)
            commands = content.get("commands") if content.get("kind") == "batch" else None
            if isinstance(commands, list) and "device" not in content:
                sizes = [_download_bytes(c["view"]) for c in commands if c.get("op") == "download"]
                slots.extend(spool.slot(n) for n in sizes if n >= HTTP_BYTES)
        except OSError:
            spool.discard([*spooled.values(), *slots])
            raise
        if spooled:
            buffers = [memoryview(b"") if str(i) in spooled else b for i, b in enumerate(buffers)]
            content = {**content, "spooled": spooled}
        if slots:
            content = {**content, "slots": slots}
            self._slots[int(content["seq"])] = slots  # type: ignore[call-overload]
        return content, buffers

    def _spool_in(
        self, reply: Mapping[str, object], data: Sequence[bytes | memoryview]
    ) -> tuple[Mapping[str, object], Sequence[bytes | memoryview]]:
        """A reply with its spooled buffers read (and their files removed); the batch's slots are closed
        once it is answered or lost (a failed PUT: the others may have left files)."""
        spooled, spool = reply.get("spooled"), self._spool
        if spool is None:
            return reply, data
        try:
            if isinstance(spooled, Mapping):
                data = list(data)
                for index, token in spooled.items():
                    try:
                        data[int(index)] = spool.take(str(token))
                    except FileNotFoundError:
                        raise BrowserTransferError(
                            f"the browser's PUT of transfer {token} never arrived (cut off or refused); "
                            "re-run the cell"
                        ) from None
        finally:
            answered = reply.get("kind") in ("reply", "lost") and reply.get("device") != "webnn"
            if answered and "seq" in reply:
                spool.discard(self._slots.pop(int(reply["seq"]), []))  # type: ignore[call-overload]
        return reply, data

    def _send_batch(self, content: dict[str, object], buffers: list[memoryview]) -> None:
        if self.transfer == "http" and self._spool is not None:
            try:
                content, buffers = self._spool_out(self._spool, content, buffers)
            except OSError as error:  # a full spool (a small /dev/shm): the comm carries this and the rest
                self.transfer, self.transfer_message = "comm", f"the transfer spool failed: {error}"
        with self._sending:
            for message in split(content, buffers, transfer=next(self._transfers)):
                self.send(*message)

    def _on_msg(
        self, _widget: object, content: dict[str, object], buffers: Sequence[bytes | memoryview]
    ) -> None:
        message, lost = self._incoming.feed(content, buffers)
        if lost is not None:
            self._lost(lost)
        if message is None:
            return
        reply, data = message
        if reply.get("kind") == "hello":  # a front end that can fetch says so before it is ready
            self._start_probe()
            return
        if reply.get("kind") == "probe":
            self._probed(reply)
            return
        try:
            reply, data = self._spool_in(reply, data)
        except BrowserTransferError as error:
            self._lost(error)
            return
        if reply.get("kind") == "lost":  # a batch reached the browser incomplete
            self._lost(BrowserTransferError(f"in the browser: {reply.get('message')}"))
            return
        device = self.webnn_device if reply.get("device") == "webnn" else self.device
        if device is not None and reply.get("kind") in ("reply", "need"):
            device.receive(reply, data)

    def _lost(self, error: BrowserTransferError) -> None:
        """A reply went missing in part: which downloads it carried is unknown, so all pending ones fail."""
        for device in (self.device, self.webnn_device):
            if device is not None:
                device.fail(error)

    def _flush_after_cell(self, *_: object) -> None:
        for device in (self.device, self.webnn_device):
            if device is not None:
                device.flush()

    def clear_cache(self) -> None:
        """Empty the browser's weight cache (after the batches sent so far); ``cache`` then shows it."""
        self._flush_after_cell()
        self._send_batch({"kind": "clear-cache"}, [])

    def cancel(self) -> None:
        """Stop the batch running in the browser and those sent so far: awaiting their data raises
        `BrowserCancelled` (the view's cancel button, shown while a long batch runs, does the same)."""
        self._send_batch({"kind": "cancel"}, [])

    async def ready(self, timeout: float = 15.0) -> BrowserDevice:
        """Await the browser's report: returns when ``browser:webgpu`` is usable and its transfer path known.

        Raises `NoWebGPUError` when the browser has no WebGPU (the message says why) and
        `BrowserTimeout` when no browser has shown the widget within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.status != "ready" or self.transfer == "probing":
            if self.status == "ready" and time.monotonic() > deadline:  # the probe's answer never came
                self._probe, self.transfer = None, "comm"
                self.transfer_message = f"the browser did not answer the HTTP probe within {timeout:g} s"
                break
            if self.status in _FAILED:
                raise NoWebGPUError(f"{self.device_name} is unavailable ({self.status}): {self.message}")
            if time.monotonic() > deadline:
                raise BrowserTimeout(
                    f"no browser has connected this BrowserDevice within {timeout:g} s "
                    f"(status {self.status!r}): display it in JupyterLab or Notebook 7 with a browser open; "
                    "tensors stay on the kernel's devices"
                )
            await asyncio.sleep(0.02)
        return self

    def close(self) -> None:
        """Disconnect: ``browser:webgpu`` and ``browser:webnn`` are unregistered; their tensors are gone."""
        self._drop("the widget was closed")
        if self.webnn_device is not None:
            self.webnn_device.disconnect("the widget was closed")
            unregister_device(self.webnn_device.name)
            self.webnn_device = None
        if self._shell is not None:
            self._shell.events.unregister("post_run_cell", self._flush_after_cell)
            self._shell = None
        super().close()


def _download_bytes(view: Mapping[str, Any]) -> int:
    """The bytes of a download command's view as the browser sends them (row-major, storage dtype)."""
    return int(np.prod(view["shape"])) * storage_dtype(np.dtype(view["dtype"])).itemsize


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
