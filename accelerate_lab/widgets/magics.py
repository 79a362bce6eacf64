"""The ``%%chat`` cell magic: the cell is the message, the answer streams into the cell's output.

``%load_ext accelerate_lab`` registers it. ``%%chat [backend:]model`` picks who answers (both
optional: with no key configured, the local SmolLM2 answers); cells continue one conversation until
``%%chat --new``; ``--no-failover`` keeps the local model out when the chosen backend fails.
Errors (rate limit, circuit open, no key) print to the cell's stderr; a failover
(the chosen backend failed before its first token, the next answered) is said above the answer.

>>> from IPython.testing.globalipapp import get_ipython  # doctest: +SKIP
>>> ip = get_ipython(); ip.run_line_magic("load_ext", "accelerate_lab")  # doctest: +SKIP
>>> ip.run_cell_magic("chat", "local", "Say hi in three words.")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import Markdown, display

from accelerate_lab.api import ApiBackend, ApiError
from accelerate_lab.widgets._chat_backend import (
    LOCAL,
    Attempt,
    describe_error,
    parse_target,
    plan_route,
    stream_reply,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["ChatMagics", "load_ipython_extension"]

_UPDATE_EVERY_S = 0.1  # the output is redrawn at most 10 times a second

_PARSER = argparse.ArgumentParser(prog="%%chat", description="Send the cell to a chat model.")
_PARSER.add_argument("target", nargs="?", default=None, help="[backend:]model, e.g. openai:gpt-4o-mini")
_PARSER.add_argument("--new", action="store_true", help="start a new conversation")
_PARSER.add_argument("--system", default=None, help="a system prompt for a new conversation")
_PARSER.add_argument("--max-tokens", type=int, default=None, help="the longest answer, in tokens")
_PARSER.add_argument("--no-failover", action="store_true", help="do not fall over to the local model")


@magics_class
class ChatMagics(Magics):
    """Holds the conversation of the ``%%chat`` cells of one kernel."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.conversation: list[dict[str, str]] = []
        self.backends: dict[str, ApiBackend] = {}

    @cell_magic
    def chat(self, line: str, cell: str) -> None:
        """Send the cell to a chat model and stream the answer: ``%%chat [backend:]model``."""
        try:
            args = _PARSER.parse_args(shlex.split(line))
        except SystemExit:  # argparse printed the usage; a magic must not end the kernel
            return
        if args.new or args.system:
            self.conversation = [{"role": "system", "content": args.system}] if args.system else []
        backend, model = parse_target(args.target)
        options: dict[str, object] = {} if args.max_tokens is None else {"max_tokens": args.max_tokens}
        question = {"role": "user", "content": cell.strip()}
        route = plan_route(backend, model, failover=() if args.no_failover else (LOCAL,))
        answer = stream_into_output(route, [*self.conversation, question], self.backends, options)
        if answer:
            self.conversation += [question, {"role": "assistant", "content": answer}]


def stream_into_output(
    route: Sequence[Attempt],
    messages: list[dict[str, str]],
    backends: dict[str, ApiBackend],
    options: dict[str, object],
) -> str:
    """Stream the reply into one output that redraws as text arrives; returns the text."""
    handle = display(Markdown("…"), display_id=True)
    text, header, footer = "", "", ""
    drawn_at, started = 0.0, time.monotonic()

    def draw() -> None:
        if handle is not None:
            handle.update(Markdown(header + (text or "…") + footer))

    try:
        for piece in stream_reply(route, messages, lambda: False, backends, **options):
            if not header and piece.failover:
                header = f"*Failover taken: {piece.failover}; {piece.backend} answered.*\n\n"
            text += piece.text
            footer = f"\n\n<sub>{piece.backend} · {piece.model}</sub>"
            if time.monotonic() - drawn_at >= _UPDATE_EVERY_S:
                draw()
                drawn_at = time.monotonic()
        footer = footer.replace("</sub>", f" · {time.monotonic() - started:.1f} s</sub>")
    except KeyboardInterrupt:
        footer += "\n\n*(stopped)*"
    except ApiError as error:
        kind, message = describe_error(error)
        print(f"chat failed ({kind}): {message}", file=sys.stderr)
    draw()
    return text


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%%chat`` (``%load_ext accelerate_lab`` calls this)."""
    ipython.register_magics(ChatMagics(ipython))
