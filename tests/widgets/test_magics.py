"""``%load_ext accelerate_lab`` and ``%%chat``: the answer streams into the cell's output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from accelerate_lab.api.testing import LocalServer, Reply, sample_routes
from accelerate_lab.widgets.magics import ChatMagics


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    with LocalServer(sample_routes()) as server:
        monkeypatch.setenv("SAMPLE_API_URL", server.url)
        ip = InteractiveShell.instance()
        ip.register_magics(ChatMagics(ip))  # a fresh conversation for each test
        yield ip


def test_load_ext_registers_the_chat_cell_magic() -> None:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "accelerate_lab")
    assert "chat" in ip.magics_manager.magics["cell"]


def _markdown(captured: Any) -> str:
    return "\n".join(o.data.get("text/markdown", "") for o in captured.outputs)


def test_chat_magic_streams_the_answer_into_the_cell_output(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_cell_magic("chat", "sample:sample-echo", "hello from a cell\n")
    shown = _markdown(captured)
    assert "echo: hello from a cell" in shown and "sample · sample-echo" in shown


def test_chat_magic_continues_the_conversation_until_new(shell: InteractiveShell) -> None:
    magics = shell.magics_manager.registry["ChatMagics"]
    with capture_output():
        shell.run_cell_magic("chat", "sample:", "first")
        shell.run_cell_magic("chat", "sample:", "second")
    assert [m["content"] for m in magics.conversation] == ["first", "echo: first", "second", "echo: second"]
    with capture_output():
        shell.run_cell_magic("chat", "sample: --new", "third")
    assert len(magics.conversation) == 2


def test_chat_magic_prints_a_rate_limit_to_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    limited = {"POST /chat": lambda req: Reply.json({"error": "slow down"}, 429, {"retry-after": "0.1"})}
    with LocalServer(limited) as server:
        monkeypatch.setenv("SAMPLE_API_URL", server.url)
        ip = InteractiveShell.instance()
        ip.register_magics(ChatMagics(ip))
        with capture_output() as captured:
            ip.run_cell_magic("chat", "sample:sample-echo --no-failover", "hi")
    assert "chat failed (rate-limit)" in captured.stderr and "retry in 0.1 s" in captured.stderr
