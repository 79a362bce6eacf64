"""The browser device's batches run by its own kernel code on the native wgpu adapter: for float16,
whose ``shader-f16`` the headless Chromium here lacks (SwiftShader has no float16) but lavapipe has.

``ReplayTransport`` is a ``BrowserProxyDevice`` transport that plays the page's part: it keeps the
buffers in a wgpu device, and hands each ``run`` command (and the copy of a strided download, as
widget/src/protocol.ts does it) to tests/browser/kernel_recorder.ts in Node, which calls the
widget's ``runKernel`` (kernels.ts, elementwise.ts, shaders.ts: the same preparation of the same
WGSL) against a recording GPU; the recorded buffers and dispatches run here. What is not covered:
Tint (Chromium's WGSL compiler; naga compiles here) and the page's transfer code (dense float16
bytes cross the real page in tests/browser/test_float16.py).
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelerate_lab.hal import wgpu_shaders
from accelerate_lab.hal.browser_device import BrowserProxyDevice

ROOT = Path(__file__).resolve().parents[2]
RECORDER = Path(__file__).with_name("kernel_recorder.ts")
ESBUILD = ROOT / "widget" / "node_modules" / ".bin" / "esbuild"
_STORAGE_BYTES = {"float32": 4, "float16": 2, "int32": 4, "uint8": 4, "bool": 4, "int64": 8, "float64": 8}
_STORAGE_DTYPE = {"uint8": "uint32", "bool": "uint32"}


def bundle(target: Path) -> Path:
    """kernel_recorder.ts and the widget code it imports as one Node script."""
    out = target / "kernel_recorder.mjs"
    options = ["--bundle", "--platform=node", "--format=esm", "--loader:.wgsl=text", "--log-level=warning"]
    subprocess.run([str(ESBUILD), str(RECORDER), *options, f"--outfile={out}"], check=True)
    return out


class ReplayTransport:
    """Runs each batch at once (downloads have arrived when ``flush`` returns); ``software`` picks the
    kernels the browser runs on software adapters (matmul_blocks.wgsl, attention_rows.wgsl)."""

    def __init__(self, script: Path, software: bool) -> None:
        import wgpu

        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        assert "shader-f16" in adapter.features, "the replay needs an adapter with shader-f16"
        self.wgpu = wgpu
        self.subgroups = "subgroup" in adapter.features  # SwiftShader's subgroups: its SUBGROUPS kernels
        self.gpu = adapter.request_device_sync(
            required_features=["shader-f16", *(["subgroup"] if self.subgroups else [])]
        )
        self.software = software
        self.node = subprocess.Popen(
            ["node", str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.buffers: dict[int, Any] = {}
        self.pipelines: dict[str, tuple[Any, Any]] = {}
        self.device: BrowserProxyDevice | None = None
        self.runs: list[str] = []  # the kernels run, in order

    def close(self) -> None:
        assert self.node.stdin is not None
        self.node.stdin.close()
        self.node.wait(10)

    def __call__(self, content: dict[str, object], buffers: list[memoryview]) -> None:
        assert self.device is not None and content["kind"] == "batch"
        downloads: list[dict[str, int]] = []
        data: list[bytes] = []
        commands = content["commands"]
        assert isinstance(commands, list)
        for cmd in commands:
            op = cmd["op"]
            if op in ("upload", "alloc"):
                self._create(cmd["id"], cmd["nbytes"])
                if op == "upload":
                    self._write(cmd["id"], bytes(buffers[cmd["buffer"]]))
            elif op == "free":
                self.buffers.pop(cmd["id"], None)
            elif op == "run":
                self.runs.append(cmd["kernel"])
                self._run(cmd)
            elif op == "download":
                downloads.append({"request": cmd["request"], "buffer": len(data)})
                data.append(self._download(cmd["view"]))
            else:
                raise AssertionError(f"the replay has no command {op!r}")
        reply = {"kind": "reply", "seq": content["seq"], "downloads": downloads, "error": None, "memory": {}}
        self.device.receive(reply, data)

    # ---- buffers --------------------------------------------------------------------------------
    def _create(self, buffer_id: int, nbytes: int) -> None:
        usage = self.wgpu.BufferUsage
        size = max(4, -(-nbytes // 4) * 4)
        self.buffers[buffer_id] = self.gpu.create_buffer(
            size=size, usage=usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
        )

    def _write(self, buffer_id: int, data: bytes) -> None:
        self.gpu.queue.write_buffer(self.buffers[buffer_id], 0, data + bytes(-len(data) % 4))

    def _download(self, view: dict[str, Any]) -> bytes:
        """A view's bytes, row-major: a dense one read as it is, else first copied by the widget's copy."""
        nbytes = int(np.prod(view["shape"], dtype=np.int64)) * _STORAGE_BYTES[view["dtype"]]
        rows = [int(np.prod(view["shape"][d + 1 :], dtype=np.int64)) for d in range(len(view["shape"]))]
        dense = all(n == 1 or s == r for n, s, r in zip(view["shape"], view["strides"], rows, strict=True))
        buffer_id = view["id"]
        if not dense or view["offset"]:
            buffer_id = -(10**12) - len(self.runs)
            self._create(buffer_id, nbytes)
            staged = {**view, "id": buffer_id, "strides": rows, "offset": 0}
            self._run(
                {
                    "op": "run",
                    "kernel": "copy",
                    "out": staged,
                    "inputs": [view],
                    "params": {},
                    "compute": None,
                }
            )
        data = bytes(self.gpu.queue.read_buffer(self.buffers[buffer_id]))[:nbytes]
        return data

    # ---- kernels --------------------------------------------------------------------------------
    def _run(self, cmd: dict[str, Any]) -> None:
        assert self.node.stdin is not None and self.node.stdout is not None
        self.node.stdin.write(
            json.dumps({"f16": True, "software": self.software, "subgroups": self.subgroups, "cmd": cmd})
            + "\n"
        )
        self.node.stdin.flush()
        recorded = json.loads(self.node.stdout.readline())
        if recorded["error"] is not None:
            raise AssertionError(f"runKernel({cmd['kernel']}) threw {recorded['error']}")
        for op in recorded["ops"]:
            if op["op"] == "create":
                self._create(op["id"], op["nbytes"])
            elif op["op"] == "free":
                self.buffers.pop(op["id"], None)
            else:
                self._dispatch(op)

    def _pipeline(self, op: dict[str, Any]) -> tuple[Any, Any]:
        key = json.dumps([op["source"], op["entry"], op["layout"], sorted(op["constants"].items())])
        if key not in self.pipelines:
            wgpu = self.wgpu
            kinds = {
                "uniform": wgpu.BufferBindingType.uniform,
                "read": wgpu.BufferBindingType.read_only_storage,
                "write": wgpu.BufferBindingType.storage,
            }
            entries = [
                {"binding": i, "visibility": wgpu.ShaderStage.COMPUTE, "buffer": {"type": kinds[kind]}}
                for i, kind in enumerate(op["layout"])
            ]
            bgl = self.gpu.create_bind_group_layout(entries=entries)
            # recomposed as the native device does: without the directives naga rejects (enable subgroups)
            module = self.gpu.create_shader_module(code=wgpu_shaders.compose(op["source"]))
            pipeline = self.gpu.create_compute_pipeline(
                layout=self.gpu.create_pipeline_layout(bind_group_layouts=[bgl]),
                compute={"module": module, "entry_point": op["entry"], "constants": op["constants"]},
            )
            self.pipelines[key] = (pipeline, bgl)
        return self.pipelines[key]

    def _dispatch(self, op: dict[str, Any]) -> None:
        pipeline, bgl = self._pipeline(op)
        uniform_bytes = base64.b64decode(op["uniform"])
        uniform = self.gpu.create_buffer_with_data(data=uniform_bytes, usage=self.wgpu.BufferUsage.UNIFORM)
        bound: Sequence[Any] = [uniform, *(self.buffers[i] for i in op["buffers"])]
        bind_group = self.gpu.create_bind_group(
            layout=bgl,
            entries=[
                {"binding": i, "resource": {"buffer": b, "offset": 0, "size": b.size}}
                for i, b in enumerate(bound)
            ],
        )
        count = op["workgroups"]
        x = min(count, 65535)  # as GpuRuntime.grid
        encoder = self.gpu.create_command_encoder()
        compute = encoder.begin_compute_pass()
        compute.set_pipeline(pipeline)
        compute.set_bind_group(0, bind_group)
        compute.dispatch_workgroups(x, -(-count // x), 1)
        compute.end()
        self.gpu.queue.submit([encoder.finish()])


def replay_device(script: Path, software: bool) -> tuple[BrowserProxyDevice, ReplayTransport]:
    """``browser:webgpu`` (an adapter with shader-f16) whose batches the replay runs; weights go as
    plain uploads (the replay keeps no weight cache)."""
    transport = ReplayTransport(script, software)
    summary = {"features": ["shader-f16"], "adapter": {"is_fallback": software}}
    device = BrowserProxyDevice(transport, summary=summary)
    device.caches_weights = False
    transport.device = device
    return device, transport
