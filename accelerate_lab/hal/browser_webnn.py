"""``browser:webnn``: tensor ops recorded lazily and run as WebNN graphs in the notebook's browser.

A kernel call on this device records a pending node and returns at once (its shape and dtype are
known, its data is not). When data is needed (a download, or an op WebNN cannot run here) the
pending nodes under it become one ``MLGraph``: the builder calls of every node
(:mod:`browser_webnn_lower`), with the buffers it reads as inputs and, as outputs, the result
plus every intermediate that Python still holds (so nothing is computed twice). A graph is keyed
by its calls, shapes and constants: the browser builds each key once and dispatches it again for
the same op sequence on new data (``stats.graphs_built`` / ``stats.graph_cache_hits``).

What the browser's WebNN context does not support (its ``opSupportLimits()``: an op, a data type,
a rank), and kernels with no WebNN form (in-place writes, scatters, index-checked gathers,
backward convolutions), run with the browser's WebGPU kernels, one op at a time: each is counted
in ``stats.webgpu_fallbacks`` and warned about once per reason.

Buffers, batches, downloads and errors are those of ``browser:webgpu`` (:class:`BrowserProxyDevice`):
only the batches carry ``"device": "webnn"``.

>>> sent = []
>>> f32 = {"dataTypes": ["float32"]}
>>> limits = {"input": f32, "output": f32, "reshape": {}, "relu": {"input": f32}}
>>> dev = BrowserWebnnDevice(lambda c, b: sent.append(c), summary={"webnn": {"limits": limits}})
>>> x = dev.upload(np.ones(6, np.float32))
>>> y = dev.run("relu", [dev.run("reshape", [x], {"shape": (2, 3)})], {})
>>> y.shape, y.storage is None  # recorded, not run
((2, 3), True)
>>> dev.download(y)  # the graph and the download go to the browser, whose reply comes later
Traceback (most recent call last):
...
accelerate_lab.hal.browser_errors.BrowserDataPending: ...
>>> [(c["op"], [n["op"] for n in c.get("nodes", [])]) for c in sent[-1]["commands"]]
[('upload', []), ('graph', ['reshape', 'relu', 'reshape']), ('download', [])]
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from accelerate_lab.errors import UnsupportedKernelError
from accelerate_lab.hal import browser_ops
from accelerate_lab.hal.browser_device import BrowserProxyDevice, Transport
from accelerate_lab.hal.browser_webnn_graph import GraphRecorder, NotInWebnn, Operand, Support, data_type
from accelerate_lab.hal.browser_webnn_lower import Arg, lower
from accelerate_lab.hal.device import Buffer, DeviceInfo, DeviceStats, KernelInput
from accelerate_lab.hal.kernels import KERNELS
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, storage_dtype

__all__ = ["BrowserWebnnDevice", "WebnnStats"]

# families whose result dtype numpy decides from the inputs' (the others derive theirs)
_PROBED = frozenset({"unary", "binary", "ternary", "reduce", "normalize"})
Value = WgpuBuffer | bool | int | float | None


@dataclass
class WebnnStats(DeviceStats):
    """`DeviceStats` plus the graphs sent (new ones and repeats) and the ops run with WebGPU."""

    graphs_built: int = 0
    graph_cache_hits: int = 0
    webgpu_fallbacks: dict[str, int] = field(default_factory=dict)


class _Pending:
    """A recorded kernel call: its inputs are pending nodes, computed buffers, scalars or None."""

    __slots__ = (
        "__weakref__",
        "args",
        "consumers",
        "dtype",
        "family",
        "kernel",
        "owner",
        "params",
        "result",
        "shape",
    )

    def __init__(
        self,
        kernel: str,
        family: str,
        args: tuple[_Pending | Value, ...],
        params: Mapping[str, Any],
        shape: tuple[int, ...],
        dtype: np.dtype[np.generic],
    ) -> None:
        self.kernel, self.family, self.args, self.params = kernel, family, args, params
        self.shape, self.dtype = shape, dtype
        self.owner: weakref.ref[WgpuBuffer] | None = None
        self.result: WgpuBuffer | None = None  # once a graph has computed and stored it
        self.consumers = 0
        for a in args:
            if isinstance(a, _Pending):
                a.consumers += 1

    def alive(self) -> bool:
        """Whether Python still holds this node's buffer (then the graph must output it)."""
        return self.owner is not None and self.owner() is not None


def _stored(a: _Pending | Value) -> WgpuBuffer | None:
    """The buffer a graph reads for an input: a computed buffer, or a computed node's result."""
    if isinstance(a, _Pending):
        return a.result
    return a if isinstance(a, WgpuBuffer) else None


def _leaf_key(buf: WgpuBuffer) -> tuple[int, tuple[int, ...], str]:
    assert buf.storage is not None
    return (buf.storage.buffer, buf.shape, buf.dtype.name)


def _post_order(targets: Sequence[_Pending]) -> list[_Pending]:
    """The uncomputed nodes under ``targets``, each after its inputs (iterative: chains may be long)."""
    order: list[_Pending] = []
    seen: set[int] = set()
    stack: list[tuple[_Pending, bool]] = [(t, False) for t in reversed(targets) if t.result is None]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            inputs = [a for a in node.args if isinstance(a, _Pending) and a.result is None]
            stack.extend((a, False) for a in reversed(inputs))
    return order


class BrowserWebnnDevice(BrowserProxyDevice):
    """A :class:`~accelerate_lab.hal.device.Device` running WebNN graphs in the notebook's browser.

    ``summary["webnn"]`` is what the widget reports (``limits``: the context's ``opSupportLimits()``,
    ``ops``: how many ops it has); ``summary["webgpu"]`` says whether the browser has WebGPU for the
    ops WebNN cannot run (without it they fail with a clear error).
    """

    caches_weights = False  # the WebNN runtime keeps no weight cache: weights go as plain uploads

    def __init__(
        self,
        transport: Transport,
        *,
        name: str = "browser:webnn",
        summary: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(
            lambda content, buffers: transport({**content, "device": "webnn"}, buffers),
            name=name,
            summary=summary,
            timeout=timeout,
        )
        self.webnn_stats = WebnnStats()
        self.stats = self.webnn_stats  # the same counters, typed as the Device protocol has them
        webnn = dict((summary or {}).get("webnn", {}))
        self._support = Support(webnn.get("limits", {}))
        self._ops = int(webnn.get("ops", 0))
        self._webgpu = bool((summary or {}).get("webgpu", False))
        self._pending: weakref.WeakKeyDictionary[WgpuBuffer, _Pending] = weakref.WeakKeyDictionary()
        self._keys: set[str] = set()
        self._warned: set[tuple[str, str]] = set()

    # ---- what it is -----------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        fallback = "WebGPU" if self._webgpu else "nothing (this browser has no WebGPU)"
        return DeviceInfo(
            name=self.name,
            kind="browser",
            description=f"WebNN in the notebook's browser: {self._ops} ops in its context; "
            f"the others run with {fallback}",
        )

    # ---- recording ------------------------------------------------------------------------------
    def run(self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object]) -> Buffer:
        self._check()
        spec = KERNELS.get(kernel)
        if spec is None:
            raise UnsupportedKernelError(f"{self.name} has no kernel {kernel!r}")
        values = cast(list[Value], list(inputs))  # this device's buffers are WgpuBuffers
        if kernel == "setitem":  # pending reads of the target must happen before it changes
            self._compute(list(self._pending.values()))
            return self._with_webgpu(kernel, values, params, "WebNN writes no tensor in place")
        try:
            return self._record(kernel, spec.family, values, params)
        except NotInWebnn as why:
            return self._with_webgpu(kernel, values, params, str(why))

    def _record(self, kernel: str, family: str, inputs: list[Value], params: Mapping[str, Any]) -> WgpuBuffer:
        out = browser_ops.probe_dtype(kernel, inputs, params) if family in _PROBED else np.dtype(np.float32)
        rec = GraphRecorder(self._support)  # a trial recording: checks support, gives the result's shape
        flat = {i: rec.input(x.shape, x.dtype) for i, x in enumerate(inputs) if isinstance(x, WgpuBuffer)}
        args: list[Arg] = [
            rec.reshape(flat[i], x.shape) if isinstance(x, WgpuBuffer) else x for i, x in enumerate(inputs)
        ]
        result = lower(rec, family, kernel, args, params, out)
        recorded = tuple(self._pending.get(x, x) if isinstance(x, WgpuBuffer) else x for x in inputs)
        node = _Pending(kernel, family, recorded, dict(params), result.shape, result.dtype)
        buf = WgpuBuffer(result.shape, result.dtype, None)
        node.owner = weakref.ref(buf)
        self._pending[buf] = node
        return buf

    def _with_webgpu(
        self, kernel: str, inputs: list[Value], params: Mapping[str, Any], reason: str
    ) -> WgpuBuffer:
        """Run one kernel with the browser's WebGPU kernels, on computed inputs; counted and warned."""
        self._compute([self._pending[x] for x in inputs if isinstance(x, WgpuBuffer) and x in self._pending])
        fallbacks = self.webnn_stats.webgpu_fallbacks
        fallbacks[kernel] = fallbacks.get(kernel, 0) + 1
        if (kernel, reason) not in self._warned:
            self._warned.add((kernel, reason))
            warnings.warn(f"{self.name} runs {kernel!r} with WebGPU: {reason}", RuntimeWarning, stacklevel=5)
        out = browser_ops.handle(self, kernel, inputs, params)
        assert out.storage is not None
        whole = out.size * out.itemsize == out.storage.nbytes
        if kernel == "setitem" or (out.is_dense() and out.offset == 0 and whole):
            return out
        return self.dense_copy(out)  # graphs read whole buffers

    # ---- computing ------------------------------------------------------------------------------
    def _compute(self, targets: Sequence[_Pending]) -> None:
        """One graph computing ``targets`` and the pending nodes they need; their buffers get storage."""
        order = _post_order(targets)
        if not order:
            return
        internal = Counter(id(a) for n in order for a in n.args if isinstance(a, _Pending))
        wanted = {id(t) for t in targets}
        outputs = [n for n in order if id(n) in wanted or n.alive() or n.consumers > internal[id(n)]]
        leaves: dict[tuple[int, tuple[int, ...], str], WgpuBuffer] = {}
        for node in order:
            for stored in map(_stored, node.args):
                if stored is not None:
                    leaves.setdefault(_leaf_key(stored), stored)
        rec = GraphRecorder(self._support)
        flat = {key: rec.input(leaf.shape, leaf.dtype) for key, leaf in leaves.items()}
        shaped = {key: rec.reshape(flat[key], leaf.shape) for key, leaf in leaves.items()}
        operands: dict[int, Operand] = {}
        for node in order:
            args: list[Arg] = []
            for a in node.args:
                buf = _stored(a)
                if buf is not None:
                    args.append(shaped[_leaf_key(buf)])
                else:
                    args.append(operands[id(a)] if isinstance(a, _Pending) else cast(Arg, a))
            operands[id(node)] = lower(rec, node.family, node.kernel, args, node.params, node.dtype)
        results = [(n, rec.reshape(operands[id(n)], (math.prod(n.shape),))) for n in outputs]
        self._send_graph(rec, [(leaf, flat[key]) for key, leaf in leaves.items()], results)
        for node in order:
            node.args = ()

    def _send_graph(
        self,
        rec: GraphRecorder,
        inputs: list[tuple[WgpuBuffer, Operand]],
        results: list[tuple[_Pending, Operand]],
    ) -> None:
        """Append the graph command (new storages for the results) and give the results' buffers storage."""
        described: list[list[dict[str, object]]] = [
            [{"dataType": data_type(o.dtype), "count": o.shape[0]} for _, o in inputs],
            [{"operand": o.index, "dataType": data_type(o.dtype), "count": o.shape[0]} for _, o in results],
        ]
        key = hashlib.sha1(json.dumps([described, rec.nodes]).encode(), usedforsecurity=False).hexdigest()[
            :24
        ]
        if key in self._keys:
            self.webnn_stats.graph_cache_hits += 1
        else:
            self._keys.add(key)
            self.webnn_stats.graphs_built += 1
        command_inputs = [
            {"id": _leaf_key(leaf)[0], **d} for (leaf, _), d in zip(inputs, described[0], strict=True)
        ]
        command_outputs: list[dict[str, object]] = []
        for (node, _), desc in zip(results, described[1], strict=True):
            storage = self._new_storage(math.prod(node.shape) * storage_dtype(node.dtype).itemsize)
            command_outputs.append({"id": storage.buffer, **desc})
            node.result = WgpuBuffer(node.shape, node.dtype, storage)
            owner = node.owner() if node.owner is not None else None
            if owner is not None:
                owner.storage = storage
                self._pending.pop(owner, None)
        command: dict[str, object] = {
            "op": "graph",
            "key": key,
            "nodes": rec.nodes,
            "inputs": command_inputs,
            "outputs": command_outputs,
        }
        with self._lock:
            self._check()
            self._batch.commands.append(command)
            self.stats.dispatches += 1
            self._maybe_flush()

    def _concrete(self, buffer: Buffer) -> WgpuBuffer:
        assert isinstance(buffer, WgpuBuffer)
        node = self._pending.get(buffer)
        if node is not None:
            self._compute([node])
        return buffer

    # ---- downloads ------------------------------------------------------------------------------
    def download(self, buffer: Buffer) -> np.ndarray:
        """The data (computing its graph first), when it has arrived; else as ``browser:webgpu``."""
        return super().download(self._concrete(buffer))

    async def download_async(self, buffer: Buffer, timeout: float | None = None) -> np.ndarray:
        """The data of ``buffer`` (computing its graph first), awaiting the browser's reply."""
        return await super().download_async(self._concrete(buffer), timeout)
