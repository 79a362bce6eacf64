"""OpenVINO Model Server (and any KServe V2 server): readiness, metadata, tensor inference, and the
TF-Serving predict route. Inputs are numpy arrays, `accelerate_lab.Tensor`s or anything with
`__array__`; outputs are `accelerate_lab.Tensor`s (numpy for dtypes a Tensor does not hold).

`ovms_api_url` is the server root (`http://localhost:8000`); several replicas are load-balanced
and health-checked at `/v2/health/ready`.

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("ovms").pool.endpoints[0].url
'http://localhost:8000'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._tensors import as_numpy, to_tensor
from accelerate_lab.api._types import ArrayLike, HttpRequest, HttpResponse, Priority
from accelerate_lab.api.protocols import kserve as proto
from accelerate_lab.api.protocols.kserve import ModelMetadata, TensorSpec

__all__ = ["Backend", "ModelMetadata", "OvmsBackend", "TensorSpec"]

P = Priority.NORMAL


def _outputs(response: HttpResponse) -> dict[str, ArrayLike]:
    return {name: to_tensor(array) for name, array in proto.parse_infer(response).items()}


def _predictions(response: HttpResponse) -> ArrayLike:
    return to_tensor(proto.parse_predict(response))


def _models(response: HttpResponse) -> list[str]:
    data = response.json()
    models = data.get("models", []) if isinstance(data, dict) else data
    return [str(m["name"] if isinstance(m, dict) else m) for m in models]


class OvmsBackend(ApiBackend):
    name = "ovms"
    default_url = "http://localhost:8000"
    health_path = "/v2/health/ready"

    def _models_request(self) -> HttpRequest:
        return HttpRequest("GET", "/v1/models")  # the TF-Serving-style list KServe's server offers

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return _models(response)

    def ready(
        self,
        model: str | None = None,
        *,
        version: str | None = None,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> bool:
        """Server readiness, or one model's with `model`."""
        return self._call(proto.ready_request(model, version), proto.parse_ready, priority, timeout)

    async def aready(
        self,
        model: str | None = None,
        *,
        version: str | None = None,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> bool:
        return await self._acall(proto.ready_request(model, version), proto.parse_ready, priority, timeout)

    def metadata(
        self, model: str, *, version: str | None = None, priority: Priority = P, timeout: float | None = None
    ) -> ModelMetadata:
        return self._call(proto.metadata_request(model, version), proto.parse_metadata, priority, timeout)

    async def ametadata(
        self, model: str, *, version: str | None = None, priority: Priority = P, timeout: float | None = None
    ) -> ModelMetadata:
        return await self._acall(
            proto.metadata_request(model, version), proto.parse_metadata, priority, timeout
        )

    def infer(
        self,
        model: str,
        inputs: Mapping[str, ArrayLike],
        *,
        outputs: Sequence[str] = (),
        version: str | None = None,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> dict[str, ArrayLike]:
        """Runs `model` on named input tensors; returns its named output tensors."""
        req = proto.infer_request(model, {k: as_numpy(v) for k, v in inputs.items()}, outputs, version)
        return self._call(req, _outputs, priority, timeout)

    async def ainfer(
        self,
        model: str,
        inputs: Mapping[str, ArrayLike],
        *,
        outputs: Sequence[str] = (),
        version: str | None = None,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> dict[str, ArrayLike]:
        req = proto.infer_request(model, {k: as_numpy(v) for k, v in inputs.items()}, outputs, version)
        return await self._acall(req, _outputs, priority, timeout)

    def predict(
        self,
        model: str,
        instances: ArrayLike | list[object],
        *,
        version: str | None = None,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> ArrayLike:
        """TF-Serving `:predict` with row-format `instances`; returns the predictions as one tensor."""
        rows = as_numpy(instances).tolist() if hasattr(instances, "__array__") else list(instances)
        return self._call(proto.predict_request(model, rows, version), _predictions, priority, timeout)

    async def apredict(
        self,
        model: str,
        instances: ArrayLike | list[object],
        *,
        version: str | None = None,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> ArrayLike:
        rows = as_numpy(instances).tolist() if hasattr(instances, "__array__") else list(instances)
        return await self._acall(proto.predict_request(model, rows, version), _predictions, priority, timeout)


Backend = OvmsBackend
