"""``BrowserDevice``: the anywidget that connects the notebook's browser GPU to the kernel.

Showing it starts WebGPU and WebNN in the browser (the bundle in ``accelerate_lab/static``, built
from ``widget/``); once the browser reports back (after the cell that shows it), ``browser:webgpu``
is a device of the kernel, and so is ``browser:webnn`` where the browser has a WebNN context.
Results come back with ``await t.numpy_async()``. Messages of any size cross in chunks that fit
Jupyter's websocket message limit (:mod:`accelerate_lab.hal.browser_chunks`).

>>> import accelerate_lab as al
>>> dev = al.BrowserDevice()
>>> dev.status  # no browser has shown it yet
'waiting'
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from accelerate_lab.hal.browser_chunks import Assembler, split
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.hal.browser_errors import BrowserTimeout, BrowserTransferError, NoWebGPUError
from accelerate_lab.hal.browser_webnn import BrowserWebnnDevice
from accelerate_lab.hal.registry import register_device, unregister_device

__all__ = ["BrowserDevice"]

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

    def __init__(self, name: str = "browser:webgpu", timeout: float = 30.0, **kwargs: Any) -> None:
        self.device_name = name
        self.timeout = timeout
        self.device: BrowserProxyDevice | None = None
        self.webnn_device: BrowserWebnnDevice | None = None
        self._shell: Any = None
        self._transfers = itertools.count(1)
        self._sending = threading.Lock()  # one transfer's messages go back to back
        self._incoming = Assembler(timeout)
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

    def _send_batch(self, content: dict[str, object], buffers: list[memoryview]) -> None:
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
        """Await the browser's report: returns when ``browser:webgpu`` is usable.

        Raises `NoWebGPUError` when the browser has no WebGPU (the message says why) and
        `BrowserTimeout` when no browser has shown the widget within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.status != "ready":
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


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
