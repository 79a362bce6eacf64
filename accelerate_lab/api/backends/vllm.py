"""vLLM's OpenAI-compatible server, plus runtime LoRA adapters (load, unload, list, use).

Runtime LoRA needs the server started with `--enable-lora` and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`.
Use an adapter by passing its name as the model. Several servers of one model (comma-separated
`vllm_api_url`) are load-balanced and health-checked at `/health`.

>>> from accelerate_lab.api import create_api_backend
>>> b = create_api_backend("vllm", metadata={"vllm_api_url": "http://gpu1:8000/v1,http://gpu2:8000/v1",
...                                          "load_balancing": "least_loaded"})
>>> [e.url for e in b.pool.endpoints], b.pool.strategy
(['http://gpu1:8000/v1', 'http://gpu2:8000/v1'], 'least_loaded')
"""

from __future__ import annotations

from dataclasses import dataclass

from accelerate_lab.api._decode import expect_dict, expect_list
from accelerate_lab.api._types import HttpRequest, HttpResponse, Priority
from accelerate_lab.api.backends._openai_compat import OpenAICompatible

__all__ = ["Backend", "LoraAdapter", "VllmBackend"]

P = Priority.NORMAL


@dataclass(frozen=True)
class LoraAdapter:
    name: str
    base_model: str
    path: str


def load_lora_request(name: str, path: str, inplace: bool = False) -> HttpRequest:
    body: dict[str, object] = {"lora_name": name, "lora_path": path}
    if inplace:
        body["load_inplace"] = True
    return HttpRequest("POST", "/load_lora_adapter", json=body)


def unload_lora_request(name: str) -> HttpRequest:
    return HttpRequest("POST", "/unload_lora_adapter", json={"lora_name": name})


def parse_loras(response: HttpResponse) -> list[LoraAdapter]:
    """Adapters are the `/v1/models` entries with a `parent` (their base model); `root` is their path."""
    data = expect_dict(response.json(), "a model list")
    return [
        LoraAdapter(str(m["id"]), str(m["parent"]), str(m.get("root", "")))
        for m in expect_list(data["data"], "data")
        if m.get("parent")
    ]


def _text(response: HttpResponse) -> str:
    return response.text


class VllmBackend(OpenAICompatible):
    name = "vllm"
    default_url = "http://localhost:8000/v1"
    default_model = ""  # whatever the server serves: see list_models()
    health_path = "/health"

    def load_lora(
        self,
        name: str,
        path: str,
        *,
        inplace: bool = False,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> list[str]:
        """Loads the adapter at `path` (on the servers' disks) as model `name` on every replica;
        returns each server's message. A name already loaded is `InvalidRequest` unless `inplace`,
        which replaces that adapter's weights under the same name."""
        return self._call_each(load_lora_request(name, path, inplace), _text, priority, timeout)

    async def aload_lora(
        self,
        name: str,
        path: str,
        *,
        inplace: bool = False,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> list[str]:
        return await self._acall_each(load_lora_request(name, path, inplace), _text, priority, timeout)

    def unload_lora(self, name: str, *, priority: Priority = P, timeout: float | None = None) -> list[str]:
        return self._call_each(unload_lora_request(name), _text, priority, timeout)

    async def aunload_lora(
        self, name: str, *, priority: Priority = P, timeout: float | None = None
    ) -> list[str]:
        return await self._acall_each(unload_lora_request(name), _text, priority, timeout)

    def list_loras(self, *, priority: Priority = P, timeout: float | None = None) -> list[LoraAdapter]:
        return self._call(HttpRequest("GET", "/models"), parse_loras, priority, timeout)

    async def alist_loras(self, *, priority: Priority = P, timeout: float | None = None) -> list[LoraAdapter]:
        return await self._acall(HttpRequest("GET", "/models"), parse_loras, priority, timeout)


Backend = VllmBackend
