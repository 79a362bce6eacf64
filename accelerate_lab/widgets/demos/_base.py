"""What the model demos share: a device picker, loading with real progress, measured timings, and work
that runs off the cell so the widget stays live.

A demo keeps one model per device it has loaded, so switching back is instant and timings compare.
Work runs on one worker thread, a job at a time: loading (the model's own ``tqdm`` bar drives the
progress bar) and runs. On ``cpu``/``wgpu`` a run calls the model's plain method; on
``browser:webgpu``/``browser:webnn`` it calls the awaitable form on the kernel's event loop, because a
browser's replies reach the kernel only while that loop is free (DESIGN.md, "Devices and the browser").
From Python, ``demo.<verb>(...)`` blocks until the result on the kernel's devices, and
``await demo.<verb>_async(...)`` works on every device. Times are ``time.perf_counter()`` around the
load or the run, as the widget's timings table shows them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import anywidget
import traitlets

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.device import Device
from accelerate_lab.hal.registry import probe_devices
from accelerate_lab.models.base import model_name
from accelerate_lab.models.hub import resolve_model_dir
from accelerate_lab.sharing._ledger import format_bytes
from accelerate_lab.widgets._shell import on_post_run_cell
from accelerate_lab.widgets.browser_device import _bundle
from accelerate_lab.widgets.demos._progress import watch_loading

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["BROWSER_DEVICES", "KERNEL_DEVICES", "ModelDemo", "Task"]

KERNEL_DEVICES = ("cpu", "wgpu")
BROWSER_DEVICES = ("browser:webgpu", "browser:webnn")
_KEEP_TIMINGS = 12
_NOT_CONNECTED = {
    "browser:webgpu": "no browser connected: display al.BrowserDevice() in this notebook first",
    "browser:webnn": "no WebNN: display al.BrowserDevice() in a browser that has WebNN",
}


class Model(Protocol):
    """What a demo needs of any model: its name, device, precision and weight size."""

    @property
    def name(self) -> str: ...

    @property
    def device(self) -> Device: ...

    @property
    def dtype(self) -> str: ...

    @property
    def weight_bytes(self) -> int: ...


M = TypeVar("M", bound=Model)
M_co = TypeVar("M_co", bound=Model, covariant=True)
R = TypeVar("R")
Source = str | os.PathLike[str]


class Loader(Protocol[M_co]):
    """A model class's ``from_pretrained``."""

    def __call__(
        self, source: Path, device: str, *, sharing: TensorSharingManager | None, dtype: str
    ) -> M_co: ...


@dataclass(frozen=True)
class Task(Generic[M, R]):
    """One run: ``what`` it does (the timings' label), its plain and awaitable forms (each also shows
    the result in the widget), and the status line for a result that took some seconds."""

    what: str
    run: Callable[[M], R]
    run_async: Callable[[M], Awaitable[R]]
    summary: Callable[[R, float], str]


def seconds_text(seconds: float) -> str:
    """``0.048`` -> ``'48 ms'``, ``2.31`` -> ``'2.31 s'``."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class ModelDemo(anywidget.AnyWidget, Generic[M]):
    """The shared half of a model demo (subclasses add the inputs, the result and the verb); it loads
    ``default_source`` when given neither ``source`` nor ``model``."""

    _esm = _bundle("demos.js")
    _css = _bundle("demos.css")
    kind = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    model_name = traitlets.Unicode("").tag(sync=True)
    model_info = traitlets.Unicode("").tag(sync=True)
    devices = traitlets.List(traitlets.Dict()).tag(sync=True)
    device = traitlets.Unicode("cpu").tag(sync=True)
    loaded_on = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Dict().tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    timings = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(
        self,
        loader: Loader[M],
        source: Source | None,
        model: M | None,
        *,
        device: str,
        sharing: TensorSharingManager | None,
        dtype: str,
        timeout: float,
        default_source: Source | None = None,
        **traits: Any,
    ) -> None:
        if source is None and model is None:
            source = default_source
        folder = None if source is None else resolve_model_dir(source)
        self._loader, self._folder = loader, folder
        self._sharing, self._dtype, self.timeout = sharing, dtype, timeout
        self._models: dict[str, M] = {}
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accelerate_lab-demo")
        self._loop = _running_loop()
        if model is not None:
            name, start = model.name, model.device.name
            self._models[start] = model
        elif folder is not None:
            name, start = model_name(folder), device
        else:
            raise ValueError("pass a model folder (source=...) or a loaded model (model=...)")
        super().__init__(model_name=name, device=start, **traits)
        self._show_model(model)
        self.refresh_devices()
        self._forget_cell_hook = on_post_run_cell(self.refresh_devices)
        self.on_msg(self._on_msg)
        self.observe(self._on_device, names="device")
        if model is None:
            self._jobs.submit(self._load_job, start)

    # ---- devices ----------------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        """Re-read which devices exist (a BrowserDevice connects after the cell that shows it)."""
        report = probe_devices()
        names = [*KERNEL_DEVICES, *BROWSER_DEVICES]
        names += [name for name in report if name not in names]
        rows = []
        for name in names:
            info = report.get(name)
            if info is None:
                reason = _NOT_CONNECTED.get(name, f"{name} is not registered")
            elif isinstance(info, str):
                reason = info
            elif self._folder is None and name not in self._models:
                reason = "this demo was given a loaded model: pass source= to load it on other devices"
            else:
                reason = ""
            loaded = name in self._models
            rows.append({"name": name, "available": not reason, "reason": reason, "loaded": loaded})
        self.devices = rows

    def _on_device(self, change: dict[str, Any]) -> None:
        self._jobs.submit(self._load_job, str(change["new"]))

    def _show_model(self, model: M | None) -> None:
        if model is not None:
            self.model_info = f"{model.dtype} · {format_bytes(model.weight_bytes)} of weights"

    # ---- jobs (on the worker thread) --------------------------------------------------------------
    def _model_on(self, device: str) -> M:
        model = self._models.get(device)
        if model is None:
            if self._folder is None:
                raise DeviceError(
                    f"this demo was given a model on {self.loaded_on!r} and no source: pass source= to "
                    f"load it on {device!r}"
                )
            self.busy, self.error, self.progress = "loading", "", {"done": 0, "total": 0}
            self.status = f"loading {self.model_name} on {device}…"
            started = time.perf_counter()
            with watch_loading(model_name(self._folder), self._on_progress):
                model = self._loader(self._folder, device, sharing=self._sharing, dtype=self._dtype)
            seconds = time.perf_counter() - started
            self._models[device] = model
            self._record("load weights", device, seconds)
            self.status = f"loaded on {device} in {seconds_text(seconds)}"
            self.refresh_devices()
        self._show_model(model)
        self.loaded_on = device
        return model

    def _on_progress(self, done: int, total: int) -> None:
        self.progress = {"done": done, "total": total}

    def _load_job(self, device: str) -> None:
        try:
            self._model_on(device)
        except Exception as error:  # shown in the widget: a worker thread's traceback would be lost
            self.error = f"loading on {device} failed: {type(error).__name__}: {error}"
            self.status = ""
        finally:
            self.busy = ""

    def _run_job(self, device: str, task: Task[M, R]) -> R:
        try:
            model = self._model_on(device)
            self.busy, self.error, self.status = "running", "", f"{task.what} on {device}…"
            started = time.perf_counter()
            browser = device in BROWSER_DEVICES
            result = self._on_loop(task.run_async(model)) if browser else task.run(model)
            seconds = time.perf_counter() - started
            self._record(task.what, device, seconds)
            self.status = f"{task.summary(result, seconds)} on {device}"
            return result
        except Exception as error:
            self.error = f"{task.what} on {device} failed: {type(error).__name__}: {error}"
            self.status = ""
            raise
        finally:
            self.busy = ""

    def _on_loop(self, work: Awaitable[R]) -> R:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise DeviceError("browser devices answer through a notebook kernel's event loop: none runs here")

        async def wrapped() -> R:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(self.timeout)

    def _record(self, what: str, device: str, seconds: float) -> None:
        row = {"what": what, "device": device, "seconds": seconds}
        self.timings = [*self.timings, row][-_KEEP_TIMINGS:]

    # ---- running ----------------------------------------------------------------------------------
    def _start(self, task: Task[M, R]) -> Future[R]:
        """Run ``task`` in the background on the selected device (what the widget's buttons do)."""
        return self._jobs.submit(self._run_job, self.device, task)

    def _call(self, task: Task[M, R], verb: str) -> R:
        device = self.device
        if device in BROWSER_DEVICES:
            raise DeviceError(
                f"{device} answers only while the cell awaits: use `await demo.{verb}_async(...)`"
            )
        return self._start(task).result(self.timeout)

    async def _call_async(self, task: Task[M, R]) -> R:
        self._loop = asyncio.get_running_loop()
        return await asyncio.wait_for(asyncio.wrap_future(self._start(task)), self.timeout)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the jobs started so far (loading included) have finished."""
        self._jobs.submit(lambda: None).result(self.timeout if timeout is None else timeout)

    # ---- the widget's messages ----------------------------------------------------------------------
    def _on_msg(
        self, _widget: object, content: dict[str, Any], buffers: Sequence[bytes | memoryview]
    ) -> None:
        self._loop = _running_loop() or self._loop
        if content.get("kind") == "devices":
            self.refresh_devices()
            return
        try:
            self._on_action(content, [bytes(b) for b in buffers])
        except (ValueError, KeyError) as error:
            self.error = f"{content.get('kind')} failed: {error}"

    def _on_action(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        raise ValueError(f"unknown action {content.get('kind')!r}")

    def close(self) -> None:
        """Stop the worker (a job that is running finishes first) and the cell hook."""
        self._forget_cell_hook()
        self._jobs.shutdown(wait=False, cancel_futures=True)
        super().close()

    def __repr__(self) -> str:
        loaded = ", ".join(self._models) or "nothing yet"
        return f"{type(self).__name__}({self.model_name!r}, device={self.device!r}, loaded on {loaded})"
