"""The KServe V2 (Open Inference Protocol) REST format, as OpenVINO Model Server, KServe, Triton
and MLServer speak it, plus the TF-Serving `:predict` route.

>>> import numpy as np
>>> encode_tensor("x", np.array([[1, 2]], dtype=np.float32))
{'name': 'x', 'shape': [1, 2], 'datatype': 'FP32', 'data': [1.0, 2.0]}
>>> decode_tensor({"name": "y", "shape": [2], "datatype": "INT64", "data": [3, 4]})
array([3, 4])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from accelerate_lab.api._decode import expect_dict, expect_list
from accelerate_lab.api._errors import ConfigurationError
from accelerate_lab.api._types import HttpRequest, HttpResponse

__all__ = [
    "ModelMetadata",
    "TensorSpec",
    "decode_tensor",
    "encode_tensor",
    "infer_request",
    "metadata_request",
    "parse_infer",
    "parse_metadata",
    "parse_predict",
    "parse_ready",
    "predict_request",
    "ready_request",
]

V2_TYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
NUMPY_TYPES = {v: k for k, v in V2_TYPES.items()}

Array = np.ndarray[Any, np.dtype[Any]]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def _path(model: str, version: str | None) -> str:
    path = "/v2/models/" + quote(model, safe="")
    return path + f"/versions/{quote(version, safe='')}" if version else path


def encode_tensor(name: str, array: Array) -> dict[str, object]:
    if array.dtype.kind in "US":
        return {"name": name, "shape": list(array.shape), "datatype": "BYTES", "data": array.ravel().tolist()}
    datatype = V2_TYPES.get(array.dtype.name)
    if datatype is None:
        raise ConfigurationError(
            f"input {name!r} has dtype {array.dtype}; KServe V2 takes {sorted(V2_TYPES)}"
        )
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.ravel().tolist()}


def decode_tensor(item: Mapping[str, Any]) -> Array:
    datatype = str(item["datatype"])
    shape = [int(d) for d in item["shape"]]
    data = item["data"]
    if datatype == "BYTES":
        return np.asarray(data, dtype=object).reshape(shape)
    return np.asarray(data, dtype=NUMPY_TYPES[datatype]).reshape(shape)


def ready_request(model: str | None = None, version: str | None = None) -> HttpRequest:
    return HttpRequest("GET", _path(model, version) + "/ready" if model else "/v2/health/ready")


def parse_ready(response: HttpResponse) -> bool:
    if response.content.strip():
        data = response.json()
        if isinstance(data, dict) and "ready" in data:
            return bool(data["ready"])
    return 200 <= response.status < 300


def metadata_request(model: str, version: str | None = None) -> HttpRequest:
    return HttpRequest("GET", _path(model, version))


def _specs(items: Sequence[Mapping[str, Any]]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(str(i["name"]), str(i["datatype"]), tuple(int(d) for d in i["shape"])) for i in items
    )


def parse_metadata(response: HttpResponse) -> ModelMetadata:
    data = expect_dict(response.json(), "model metadata")
    return ModelMetadata(
        str(data["name"]),
        tuple(str(v) for v in data.get("versions") or ()),
        str(data.get("platform", "")),
        _specs(data.get("inputs") or ()),
        _specs(data.get("outputs") or ()),
    )


def infer_request(
    model: str,
    inputs: Mapping[str, Array],
    outputs: Sequence[str] = (),
    version: str | None = None,
    request_id: str | None = None,
) -> HttpRequest:
    body: dict[str, object] = {"inputs": [encode_tensor(n, a) for n, a in inputs.items()]}
    if outputs:
        body["outputs"] = [{"name": n} for n in outputs]
    if request_id:
        body["id"] = request_id
    return HttpRequest("POST", _path(model, version) + "/infer", json=body)


def parse_infer(response: HttpResponse) -> dict[str, Array]:
    data = expect_dict(response.json(), "an inference answer")
    return {str(o["name"]): decode_tensor(o) for o in expect_list(data["outputs"], "outputs")}


def predict_request(model: str, instances: list[object], version: str | None = None) -> HttpRequest:
    path = "/v1/models/" + quote(model, safe="") + (f"/versions/{version}" if version else "") + ":predict"
    return HttpRequest("POST", path, json={"instances": instances})


def parse_predict(response: HttpResponse) -> Array:
    data = expect_dict(response.json(), "a predict answer")
    return np.asarray(data["predictions"] if "predictions" in data else data["outputs"])
