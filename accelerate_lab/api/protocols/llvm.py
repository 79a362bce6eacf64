"""The LLVM inference REST protocol: a small protocol of our own, since no public standard exists for
servers that run LLVM-compiled models (ahead-of-time compiled graphs, MLIR/IREE modules, ...).

Version 1. JSON over HTTP; errors are `{"error": {"message": str, "type": str}}` with a 4xx/5xx status.
Tensors use the KServe V2 JSON form `{"shape": [int], "datatype": "FP32", "data": [flat row-major]}`.

- `GET /v1/models` -> `{"models": [{"id": str, "loaded": bool, "target": str}]}`
- `POST /v1/models/{id}/load` `{"path"?: str}` (a compiled module on the server)
  -> `{"id": str, "loaded": true}`
- `POST /v1/models/{id}/unload` -> `{"id": str, "loaded": false}`
- `POST /v1/models/{id}/infer` `{"inputs": {name: tensor}}` -> `{"id": str, "outputs": {name: tensor}}`
- `POST /v1/models/{id}/generate` `{"prompt": str, "max_tokens"?: int, "stream"?: bool}`
  -> `{"text": str, "tokens": int}`; with `stream`, NDJSON lines `{"text": str}`, then
  `{"done": true, "tokens": int}`
- `GET /health` -> `{"status": "ok"}`

>>> infer_request("mlp", {"x": __import__("numpy").ones((1, 2), "float32")}).json
{'inputs': {'x': {'shape': [1, 2], 'datatype': 'FP32', 'data': [1.0, 1.0]}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from accelerate_lab.api._decode import Frame, expect_dict, expect_list
from accelerate_lab.api._errors import ProviderError
from accelerate_lab.api._types import ChatResponse, HttpRequest, HttpResponse, StreamChunk, Usage
from accelerate_lab.api.protocols.kserve import decode_tensor, encode_tensor

__all__ = [
    "GenerateStreamDecoder",
    "LlvmModel",
    "generate_request",
    "infer_request",
    "load_request",
    "parse_generate",
    "parse_infer",
    "parse_load",
    "parse_models",
    "unload_request",
]

Array = np.ndarray[Any, np.dtype[Any]]


@dataclass(frozen=True)
class LlvmModel:
    id: str
    loaded: bool
    target: str = ""


def _model(model: str) -> str:
    return "/v1/models/" + quote(model, safe="")


def parse_models(response: HttpResponse) -> list[LlvmModel]:
    data = expect_dict(response.json(), "a model list")
    return [
        LlvmModel(str(m["id"]), bool(m.get("loaded", False)), str(m.get("target", "")))
        for m in expect_list(data["models"], "models")
    ]


def load_request(model: str, path: str | None = None) -> HttpRequest:
    return HttpRequest("POST", _model(model) + "/load", json={"path": path} if path else {})


def unload_request(model: str) -> HttpRequest:
    return HttpRequest("POST", _model(model) + "/unload", json={})


def parse_load(response: HttpResponse) -> bool:
    return bool(expect_dict(response.json(), "a load answer")["loaded"])


def infer_request(model: str, inputs: Mapping[str, Array]) -> HttpRequest:
    tensors = {}
    for name, array in inputs.items():
        encoded = encode_tensor(name, array)
        del encoded["name"]
        tensors[name] = encoded
    return HttpRequest("POST", _model(model) + "/infer", json={"inputs": tensors})


def parse_infer(response: HttpResponse) -> dict[str, Array]:
    outputs = expect_dict(expect_dict(response.json(), "an infer answer")["outputs"], "outputs")
    return {name: decode_tensor({"name": name, **t}) for name, t in outputs.items()}


def generate_request(model: str, prompt: str, opts: Mapping[str, object], stream: bool) -> HttpRequest:
    return HttpRequest(
        "POST",
        _model(model) + "/generate",
        json={"prompt": prompt, "stream": stream, **opts},
        stream="ndjson" if stream else None,
    )


def parse_generate(response: HttpResponse) -> ChatResponse:
    data = expect_dict(response.json(), "a generate answer")
    return ChatResponse(
        str(data["text"]), str(data.get("id", "")), Usage(0, int(data.get("tokens", 0))), "stop", raw=data
    )


@dataclass
class GenerateStreamDecoder:
    done: bool = False

    def feed(self, frame: Frame) -> list[StreamChunk]:
        data = frame.json_object("a stream line")
        if "error" in data:
            raise ProviderError(f"llvm: {data['error']}", status=500, body=frame.data[:2000])
        if data.get("done"):
            self.done = True
            return [StreamChunk(done=True, finish_reason="stop", usage=Usage(0, int(data.get("tokens", 0))))]
        return [StreamChunk(text=str(data["text"]), raw=data)]
