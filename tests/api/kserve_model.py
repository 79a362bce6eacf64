"""A KServe model server for the `server` tests: doubles its FP32 input `x` into `y` (V2 infer) and
doubles `instances` into `predictions` (TF-serving :predict). Runs in the kserve virtualenv made by
scripts/setup_servers.sh, bound to 127.0.0.1 only.

usage: python kserve_model.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import uvicorn
from kserve import Model, ModelServer
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

_Config = uvicorn.Config


class LoopbackConfig(_Config):
    """KServe hard-codes host 0.0.0.0; the tests serve on loopback only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # uvicorn's arguments, whatever its version
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


uvicorn.Config = LoopbackConfig  # type: ignore[misc]  # a deliberate monkeypatch: KServe calls uvicorn.Config


class Doubler(Model):  # type: ignore[misc]  # kserve is untyped here: it lives in its own virtualenv
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = True

    def get_input_types(self) -> list[dict[str, object]]:
        return [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]

    def get_output_types(self) -> list[dict[str, object]]:
        return [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]

    async def predict(
        self,
        payload: InferRequest | dict[str, Any],
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse | dict[str, object]:
        if isinstance(payload, InferRequest):
            x = payload.inputs[0].as_numpy()
            out = InferOutput(name="y", shape=list(x.shape), datatype=payload.inputs[0].datatype)
            out.set_data_from_numpy((x * 2).astype(x.dtype), binary_data=False)
            return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[out])
        return {"predictions": (np.asarray(payload["instances"]) * 2).tolist()}


if __name__ == "__main__":
    ModelServer(http_port=int(sys.argv[1]), enable_grpc=False, workers=1).start([Doubler("doubler")])
