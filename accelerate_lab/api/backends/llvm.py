"""LLVM-based inference servers, through the small REST protocol defined (and documented) in
`accelerate_lab.api.protocols.llvm`: list, load, unload, tensor inference, and text generation.

`chat` joins the messages into one prompt and calls `generate`.

>>> from accelerate_lab.api import create_api_backend
>>> create_api_backend("llvm").pool.endpoints[0].url
'http://localhost:8090'
"""

from __future__ import annotations

from collections.abc import Mapping

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._layer import StreamDecoder
from accelerate_lab.api._tensors import as_numpy, to_tensor
from accelerate_lab.api._types import (
    ArrayLike,
    ChatResponse,
    HttpRequest,
    HttpResponse,
    Message,
    Priority,
    StreamChunk,
)
from accelerate_lab.api.protocols import llvm as proto
from accelerate_lab.api.protocols.llvm import LlvmModel

__all__ = ["Backend", "LlvmBackend", "LlvmModel"]

P = Priority.NORMAL


def _prompt(messages: list[Message]) -> str:
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages) + "\nassistant:"


def _outputs(response: HttpResponse) -> dict[str, ArrayLike]:
    return {name: to_tensor(array) for name, array in proto.parse_infer(response).items()}


def _ids(response: HttpResponse) -> list[str]:
    return [m.id for m in proto.parse_models(response)]


class LlvmBackend(ApiBackend):
    name = "llvm"
    default_url = "http://localhost:8090"
    health_path = "/health"

    def _chat_request(
        self, model: str, messages: list[Message], opts: dict[str, object], stream: bool
    ) -> HttpRequest:
        return proto.generate_request(model, _prompt(messages), opts, stream)

    def _parse_chat(self, response: HttpResponse) -> ChatResponse:
        return proto.parse_generate(response)

    def _stream_decoder(self) -> StreamDecoder[StreamChunk]:
        return proto.GenerateStreamDecoder()

    def _models_request(self) -> HttpRequest:
        return HttpRequest("GET", "/v1/models")

    def _parse_models(self, response: HttpResponse) -> list[str]:
        return _ids(response)

    def models(self, *, priority: Priority = P, timeout: float | None = None) -> list[LlvmModel]:
        """Every model the server knows, with whether it is loaded."""
        return self._call(HttpRequest("GET", "/v1/models"), proto.parse_models, priority, timeout)

    async def amodels(self, *, priority: Priority = P, timeout: float | None = None) -> list[LlvmModel]:
        return await self._acall(HttpRequest("GET", "/v1/models"), proto.parse_models, priority, timeout)

    def load(
        self, model: str, path: str | None = None, *, priority: Priority = P, timeout: float | None = None
    ) -> bool:
        """Loads `model` (from `path` on the server, if given) on every replica."""
        return all(self._call_each(proto.load_request(model, path), proto.parse_load, priority, timeout))

    async def aload(
        self, model: str, path: str | None = None, *, priority: Priority = P, timeout: float | None = None
    ) -> bool:
        return all(
            await self._acall_each(proto.load_request(model, path), proto.parse_load, priority, timeout)
        )

    def unload(self, model: str, *, priority: Priority = P, timeout: float | None = None) -> None:
        self._call_each(proto.unload_request(model), proto.parse_load, priority, timeout)

    async def aunload(self, model: str, *, priority: Priority = P, timeout: float | None = None) -> None:
        await self._acall_each(proto.unload_request(model), proto.parse_load, priority, timeout)

    def infer(
        self,
        model: str,
        inputs: Mapping[str, ArrayLike],
        *,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> dict[str, ArrayLike]:
        req = proto.infer_request(model, {k: as_numpy(v) for k, v in inputs.items()})
        return self._call(req, _outputs, priority, timeout)

    async def ainfer(
        self,
        model: str,
        inputs: Mapping[str, ArrayLike],
        *,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> dict[str, ArrayLike]:
        req = proto.infer_request(model, {k: as_numpy(v) for k, v in inputs.items()})
        return await self._acall(req, _outputs, priority, timeout)


Backend = LlvmBackend
