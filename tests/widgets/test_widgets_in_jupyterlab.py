"""The widgets in JupyterLab, driven by headless Chromium: the dashboard follows tensors registered in
the kernel and its buttons act there, the chat widget and a ``%%chat`` cell stream from a local server,
errors show, and a saved notebook (widget state included) holds no key. Screenshots are kept in
``$ACCELERATE_LAB_SCREENSHOTS`` (when set) for a person to look at."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_jupyterlab import jupyterlab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "sk-test-9f8e7d6c5b4aSECRET"
SETUP = f"""import json, os
import accelerate_lab as al
from accelerate_lab.api.testing import LocalServer, Reply

def slow_echo(req):
    words = ("echo: " + req.json()["messages"][-1]["content"]).split(" ")
    lines = [{{"text": w if i == 0 else " " + w}} for i, w in enumerate(words)] + [{{"done": True}}]
    return Reply(200, {{"content-type": "application/x-ndjson"}},
                 [json.dumps(line).encode() + b"\\n" for line in lines], chunk_delay=0.2)

server = LocalServer({{"POST /chat": slow_echo}}); server.start()
def busy(req):
    return Reply.json({{"error": "slow down"}}, 429, {{"retry-after": "30"}})

limited = LocalServer({{"POST /chat": busy}}); limited.start()
os.environ["SAMPLE_API_URL"] = server.url
key = {SECRET!r}
print("READY")"""
CELLS = {
    "setup": SETUP,
    "dashboard": "mgr = al.TensorSharingManager(max_memory_mb=8)\ndash = al.MemoryDashboard(mgr)\ndash",
    "register": (
        "import numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        "weights = rng.standard_normal((512, 384)).astype('float32')\n"
        "mgr.register_shared_tensor('bert.embeddings', data=weights, producer_model='bert',\n"
        "                           consumer_models=['clip-text'])\n"
        "for i in range(4):\n"
        "    mgr.register_shared_tensor(f'bert.layer{i}.attn', [384, 384], producer_model='bert')\n"
        "mgr.register_shared_tensor('vit.patch_embed', [768, 256], producer_model='vit').pin()\n"
        "mgr.register_shared_tensor('scratch', [256, 256])\n"
        "print('REGISTERED', len(mgr))"
    ),
    "kernel_state": (
        "pinned = mgr.get_shared_tensor('vit.patch_embed').is_pinned\n"
        "print('STATE', sorted(mgr.get_tensor_memory_usage()), pinned)"
    ),
    "chat": (
        "chat = al.Chat(backend='sample', metadata={'sample_api_url': server.url, 'sample_api_key': key})\n"
        "chat"
    ),
    "magic": "%load_ext accelerate_lab",
    "magic_cell": "%%chat sample:sample-echo\nWhat does the memory dashboard show?",
    "errors": (
        "settings = {'sample_api_url': limited.url, 'sample_api_key': key, 'max_retries': 0}\n"
        "failing = al.Chat(backend='sample', failover=(), metadata=settings)\n"
        "failing.ask('hello?')\nfailing"
    ),
}
ORDER = list(CELLS)


def _notebook(path: Path) -> None:
    cells: list[dict[str, object]] = [
        {"cell_type": "code", "metadata": {}, "source": CELLS[name], "outputs": [], "execution_count": None}
        for name in ORDER
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))


def _run(page: Any, name: str, expect: str | None = None, timeout_ms: int = 60_000) -> Any:
    """Run the cell called ``name``; wait for an output containing ``expect``; the cell's locator."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    cell = page.locator(".jp-Notebook .jp-Cell").nth(ORDER.index(name))
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        # a key press right after the page settles can be lost: the prompt shows whether it ran
        try:
            page.wait_for_function(
                "(p) => p.textContent.trim() !== '[ ]:'", arg=prompt.element_handle(), timeout=5_000
            )
            break
        except PlaywrightTimeout:
            continue
    if expect is not None:
        cell.locator(".jp-OutputArea-output", has_text=expect).first.wait_for(timeout=timeout_ms)
    return cell


def _shot(locator: Any, folder: Path, name: str) -> None:
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(folder / name))
    keep = os.environ.get("ACCELERATE_LAB_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / name, Path(keep) / name)


@pytest.fixture(scope="module")
def lab(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """JupyterLab (saving widget state with the notebook) on widgets.ipynb, its kernel idle."""
    root = tmp_path_factory.mktemp("lab")
    _notebook(root / "widgets.ipynb")
    settings = root / "settings" / "@jupyter-widgets" / "jupyterlab-manager"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"saveState": True}))
    news = root / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    previous = os.environ.get("JUPYTERLAB_SETTINGS_DIR")
    os.environ["JUPYTERLAB_SETTINGS_DIR"] = str(root / "settings")
    try:
        with jupyterlab(root) as (url, token):
            page = chromium.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{url}/lab/tree/widgets.ipynb?token={token}", timeout=90_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=90_000)
            # JupyterLab sometimes asks which kernel to start (a session left by another server): accept
            page.wait_for_timeout(1_000)
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count():
                dialog.first.click()
                page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
                    timeout=90_000
                )
            try:
                _run(page, "setup", "READY")
                yield page, root
            finally:
                page.screenshot(path=str(root / "page.png"))  # what the page showed, for a failure
                page.close()
    finally:
        if previous is None:
            os.environ.pop("JUPYTERLAB_SETTINGS_DIR", None)
        else:
            os.environ["JUPYTERLAB_SETTINGS_DIR"] = previous


def test_dashboard_follows_tensors_registered_in_the_kernel(lab: tuple[Any, Path]) -> None:
    page, root = lab
    _run(page, "dashboard")
    dashboard = page.locator(".al-dashboard")
    dashboard.wait_for(timeout=60_000)
    _run(page, "register", "REGISTERED 7")
    # no refresh: the kernel's live updates bring the rows, the models and the gauge
    dashboard.locator("tr[data-tensor='bert.embeddings']").wait_for(timeout=20_000)
    dashboard.locator(".al-dash-row[data-model='clip-text']").wait_for(timeout=20_000)
    dashboard.locator("tr[data-tensor='scratch']").wait_for(timeout=20_000)  # updates may come in two parts
    assert dashboard.locator("tbody tr").count() == 7
    assert "of 8.0 MiB" in dashboard.locator(".al-dash-gauge[data-device='cpu']").inner_text()
    assert dashboard.locator(".al-dash-chart svg path").count() >= 1
    dashboard.locator(".al-dash-rec").first.wait_for(timeout=20_000)
    _shot(dashboard, root, "memory_dashboard.png")


def test_dashboard_table_sorts_by_a_clicked_column(lab: tuple[Any, Path]) -> None:
    page, _ = lab
    table = page.locator(".al-dashboard .al-dash-table")
    table.locator("th[data-key='name']").click()
    names = page.locator(".al-dashboard .al-dash-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.tensor)"
    )
    assert names == sorted(names)


def test_dashboard_buttons_act_in_the_kernel(lab: tuple[Any, Path]) -> None:
    page, root = lab
    dashboard = page.locator(".al-dashboard")
    dashboard.locator(".al-dash-row[data-model='clip-text'] button", has_text="release").click()
    dashboard.locator(".al-banner", has_text="released 1 tensors held by 'clip-text'").wait_for(
        timeout=20_000
    )
    dashboard.locator("tr[data-tensor='vit.patch_embed'] button", has_text="unpin").click()
    dashboard.locator(".al-banner", has_text="unpinned 'vit.patch_embed'").wait_for(timeout=20_000)
    dashboard.locator("button", has_text="Optimize").click()
    dashboard.locator(".al-banner", has_text="optimized: freed").wait_for(timeout=20_000)
    dashboard.locator("tr[data-tensor='scratch']").wait_for(state="detached", timeout=20_000)
    _shot(dashboard, root, "memory_dashboard_after_optimize.png")
    cell = _run(page, "kernel_state", "STATE")
    state = cell.locator(".jp-OutputArea-output").inner_text()
    # scratch (held by no model) was freed; vit.patch_embed is unpinned but vit still holds it
    assert "'scratch'" not in state and "'vit.patch_embed'" in state and state.strip().endswith("False")


def test_chat_widget_streams_a_reply_from_a_local_server(lab: tuple[Any, Path]) -> None:
    page, root = lab
    _run(page, "chat")
    chat = page.locator(".al-chat").first
    chat.wait_for(timeout=60_000)
    assert chat.locator("select.al-chat-backend option[value='openai']").count() == 1
    chat.locator("textarea").fill("how much memory does bert use")
    chat.locator("button.al-chat-send").click()
    # tokens arrive one by one (0.2 s apart): the live bubble shows part of the answer first
    live = page.locator(".al-chat[data-streaming='true'] .al-chat-live", has_text="echo:").first
    live.wait_for(timeout=60_000)
    partial = live.locator(".al-chat-text").inner_text()
    answer = "echo: how much memory does bert use"
    chat.locator(".al-chat-assistant:not(.al-chat-live)", has_text=answer).wait_for(timeout=60_000)
    assert partial.startswith("echo:") and partial != "echo: how much memory does bert use"
    assert "answered" in chat.locator(".al-chat-status").inner_text()
    _shot(chat, root, "chat.png")


def test_chat_cell_magic_streams_into_the_output(lab: tuple[Any, Path]) -> None:
    page, root = lab
    _run(page, "magic")
    cell = _run(page, "magic_cell", "echo: What does the memory dashboard show?", 120_000)
    cell.locator(".jp-OutputArea-output", has_text="sample · sample-echo").wait_for(timeout=20_000)
    _shot(cell, root, "chat_magic.png")


def test_rate_limit_is_visible_in_the_chat_widget(lab: tuple[Any, Path]) -> None:
    page, root = lab
    cell = _run(page, "errors")
    error = cell.locator(".al-chat .al-banner-error[data-kind='rate-limit']")
    error.wait_for(timeout=60_000)
    assert "retry in 30 s" in error.inner_text() and "Rate limited" in error.inner_text()
    _shot(cell.locator(".al-chat"), root, "chat_rate_limited.png")


def test_saved_notebook_holds_no_key(lab: tuple[Any, Path]) -> None:
    page, root = lab
    path = root / "widgets.ipynb"
    before = path.stat().st_mtime
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert path.stat().st_mtime > before, "JupyterLab did not save the notebook"
    saved = path.read_text()
    widgets_state = json.loads(saved)["metadata"].get("widgets", {})
    assert "echo: how much memory does bert use" in saved  # the chat history was saved with the widgets
    assert widgets_state, "the widget state was not saved with the notebook"
    assert SECRET not in saved.replace(repr(SECRET), "")  # only the cell that defines it holds it
