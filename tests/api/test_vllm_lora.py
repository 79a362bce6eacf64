"""vLLM's LoRA reload in place, fast, against a local server that answers as vLLM 0.32 did (recorded in
test_vllm_server.py's real-server run): a second load of a loaded name is a 400 unless `load_inplace`."""

from __future__ import annotations

import pytest

from accelerate_lab.api import InvalidRequest
from accelerate_lab.api.backends.vllm import VllmBackend
from accelerate_lab.api.testing import Reply, Request

from .conftest import Serve, backend_for

ALREADY_LOADED = {
    "error": {
        "message": "The lora adapter 'sql' has already been loaded. If you want to load the adapter in "
        "place, set 'load_inplace' to True.",
        "type": "InvalidUserInput",
        "param": None,
        "code": 400,
    }
}


async def test_load_twice_is_invalid_unless_in_place(serve: Serve) -> None:
    loaded: dict[str, str] = {}

    def load(req: Request) -> Reply:
        body = req.json()
        if body["lora_name"] in loaded and not body.get("load_inplace"):
            return Reply.json(ALREADY_LOADED, status=400)
        loaded[body["lora_name"]] = body["lora_path"]
        return Reply.raw(f"Success: LoRA adapter '{body['lora_name']}' added successfully.".encode())

    server = serve({"POST /v1/load_lora_adapter": load})
    b = backend_for("vllm", server.url + "/v1")
    assert isinstance(b, VllmBackend)
    b.load_lora("sql", "/adapters/a")
    with pytest.raises(InvalidRequest, match="already been loaded"):
        b.load_lora("sql", "/adapters/b")
    await b.aload_lora("sql", "/adapters/b", inplace=True)
    assert loaded == {"sql": "/adapters/b"}
    assert [r.json() for r in server.requests] == [
        {"lora_name": "sql", "lora_path": "/adapters/a"},
        {"lora_name": "sql", "lora_path": "/adapters/b"},
        {"lora_name": "sql", "lora_path": "/adapters/b", "load_inplace": True},
    ]
