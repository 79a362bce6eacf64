"""``Chat``: a chat widget over any API backend, streaming tokens, with a stop button and visible errors.

The backend and model pickers list ``get_available_backends()``; with no key configured for a hosted
provider the chat uses ``local`` (the embedded SmolLM2), so it works offline. A reply streams on a
kernel thread, so the kernel stays free for cells and the stop button works at once. Rate limits,
open circuits and failovers (a backend failed before its first token; the next one answered) show in
the widget. Keys stay in the kernel: the widget's state holds only names, messages and status.

>>> import accelerate_lab as al
>>> from accelerate_lab.api.testing import LocalServer, sample_routes
>>> with LocalServer(sample_routes()) as server:
...     chat = al.Chat(backend="sample", metadata={"sample_api_url": server.url})
...     chat.ask("hello", wait=True)
'echo: hello'
>>> chat.messages[-1]["role"], chat.backend
('assistant', 'sample')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anywidget
import traitlets

from accelerate_lab.api import ApiBackend, ApiError
from accelerate_lab.widgets._chat_backend import (
    LOCAL,
    Attempt,
    available_backends,
    describe_error,
    plan_route,
    stream_reply,
)
from accelerate_lab.widgets.browser_device import _bundle

__all__ = ["Chat"]

_DELTA_EVERY_S = 0.05  # tokens are sent in batches: at most 20 messages a second


class Chat(anywidget.AnyWidget):
    """Chat with ``backend`` (a name, a configured `ApiBackend`, or None: the first hosted provider
    with a key, else ``local``) and ``model`` (None: the backend's default).

    ``metadata`` configures backends created by name (keys, URLs; kept in the kernel). ``failover``
    names the backends tried when the chosen one fails before its first token. ``system`` is an
    optional system prompt. ``options`` go to every request (``max_tokens``, ``temperature``, ...).
    """

    _esm = _bundle("chat.js")
    _css = _bundle("chat.css")
    backends = traitlets.List(traitlets.Unicode()).tag(sync=True)
    backend = traitlets.Unicode("").tag(sync=True)
    model = traitlets.Unicode("").tag(sync=True)
    messages = traitlets.List(traitlets.Dict()).tag(sync=True)
    streaming = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Dict().tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        backend: str | ApiBackend | None = None,
        model: str | None = None,
        *,
        metadata: Mapping[str, object] | None = None,
        failover: Sequence[str] = (LOCAL,),
        system: str | None = None,
        **options: object,
    ) -> None:
        route = plan_route(backend, model, metadata, failover)
        self._backends: dict[str, ApiBackend] = {}
        if not isinstance(route[0].backend, str):
            self._backends[route[0].name] = route[0].backend
        self._metadata = dict(metadata or {})
        self._failover = tuple(failover)
        self._system = system
        self._options = options
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._result = ""
        super().__init__(backends=available_backends(), backend=route[0].name, model=model or "")
        self.on_msg(self._on_msg)

    # ---- asking ---------------------------------------------------------------------------------
    def ask(self, text: str, *, wait: bool = False, timeout: float = 300.0) -> str | None:
        """Send ``text`` as the user; the reply streams into the widget. With ``wait``, block until it
        is complete and return it (outside a notebook, or in tests)."""
        if self.streaming:
            raise RuntimeError("a reply is still streaming: stop it first (chat.stop())")
        self.error, self.notice = {}, ""
        self.messages = [*self.messages, {"role": "user", "content": text}]
        self.streaming = True
        self._stop.clear()
        self._worker = threading.Thread(target=self._answer, name="accelerate_lab-chat", daemon=True)
        self._worker.start()
        if not wait:
            return None
        self._worker.join(timeout)
        if self._worker.is_alive():
            self.stop()
            raise TimeoutError(f"no complete reply within {timeout:g} s; the request was stopped")
        return self._result

    def stop(self) -> None:
        """Stop the reply that is streaming (what arrived so far is kept)."""
        self._stop.set()

    def clear(self) -> None:
        """Forget the conversation."""
        self.stop()
        self.messages, self.error, self.notice, self.status = [], {}, "", ""

    def _route(self) -> list[Attempt]:
        return plan_route(self.backend, self.model or None, self._metadata, self._failover)

    def _answer(self) -> None:
        history = [{"role": m["role"], "content": m["content"]} for m in self.messages]
        if self._system:
            history.insert(0, {"role": "system", "content": self._system})
        text, pending, sent_at, started = "", "", 0.0, time.monotonic()
        who = ""
        self.status = f"waiting for {self.backend}…"
        try:
            route = self._route()
            for piece in stream_reply(route, history, self._stop.is_set, self._backends, **self._options):
                if not who:
                    who = f"{piece.backend} · {piece.model}"
                    self.status = f"{who} is answering…"
                    if piece.failover:
                        self.notice = f"Failover taken: {piece.failover}; {piece.backend} answered."
                text += piece.text
                pending += piece.text
                if pending and time.monotonic() - sent_at >= _DELTA_EVERY_S:
                    self.send({"kind": "delta", "text": pending})
                    pending, sent_at = "", time.monotonic()
            if pending:
                self.send({"kind": "delta", "text": pending})
        except ApiError as error:
            kind, message = describe_error(error)
            self.error = {"kind": kind, "text": message}
        except Exception as error:  # shown in the widget: a thread's traceback would be lost
            self.error = {"kind": "error", "text": f"{type(error).__name__}: {error}"}
        finally:
            stopped = self._stop.is_set()
            elapsed = time.monotonic() - started
            self._result = text
            if text:
                self.messages = [*self.messages, {"role": "assistant", "content": text, "by": who}]
            state = "stopped" if stopped else "answered"
            self.status = f"{who} {state} in {elapsed:.1f} s" if who else ""
            self.streaming = False

    def _on_msg(self, _widget: object, content: dict[str, Any], _buffers: object) -> None:
        kind = content.get("kind")
        if kind == "ask" and not self.streaming:
            self.ask(str(content.get("text", "")))
        elif kind == "stop":
            self.stop()
        elif kind == "clear":
            self.clear()

    def __repr__(self) -> str:
        return f"Chat(backend={self.backend!r}, model={self.model!r}, {len(self.messages)} messages)"
