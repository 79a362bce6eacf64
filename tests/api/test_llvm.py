"""The LLVM inference protocol (defined in accelerate_lab.api.protocols.llvm), served locally."""

from __future__ import annotations

import numpy as np

from accelerate_lab.api.backends.llvm import LlvmBackend, LlvmModel
from accelerate_lab.api.testing import Reply, Request

from .conftest import Serve, backend_for


def llvm_routes() -> dict[str, object]:
    loaded: set[str] = set()

    def load(req: Request) -> Reply:
        loaded.add(req.path.split("/")[3])
        return Reply.json({"id": req.path.split("/")[3], "loaded": True})

    def infer(req: Request) -> Reply:
        x = req.json()["inputs"]["x"]
        data = [2 * v for v in x["data"]]
        return Reply.json({"id": "mlp", "outputs": {"y": {**x, "data": data}}})

    def generate(req: Request) -> Reply:
        if req.json()["stream"]:
            return Reply.ndjson([{"text": "compiled"}, {"text": " hello"}, {"done": True, "tokens": 2}])
        return Reply.json({"id": "gpt2-aot", "text": "compiled hello", "tokens": 2})

    return {
        "GET /v1/models": lambda r: Reply.json(
            {"models": [{"id": m, "loaded": m in loaded, "target": "x86_64"} for m in ("mlp", "gpt2-aot")]}
        ),
        "POST /v1/models/*/load": load,
        "POST /v1/models/*/infer": infer,
        "POST /v1/models/*/generate": generate,
    }


async def test_list_load_infer_generate(serve: Serve) -> None:
    server = serve(llvm_routes())  # type: ignore[arg-type]
    b = backend_for("llvm", server.url)
    assert isinstance(b, LlvmBackend)
    assert b.models() == [LlvmModel("mlp", False, "x86_64"), LlvmModel("gpt2-aot", False, "x86_64")]
    assert b.load("mlp", path="/srv/mlp.so")
    assert server.requests[-1].json() == {"path": "/srv/mlp.so"}
    assert (await b.amodels())[0].loaded
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.asarray((await b.ainfer("mlp", {"x": x}))["y"])
    np.testing.assert_array_equal(y, 2 * x)
    assert y.dtype == np.float32
    assert b.chat("gpt2-aot", "hi").text == "compiled hello"
    assert [c.text for c in b.stream_chat("gpt2-aot", "hi")] == ["compiled", " hello", ""]
    assert b.list_models() == ["mlp", "gpt2-aot"]
