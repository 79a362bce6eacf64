"""The widgets in Notebook 7 (the ``notebook`` package, served by the same Jupyter server as JupyterLab):
the memory dashboard shows tensors registered in the kernel, and the chat widget streams a reply from a
local server. Screenshots go to ``$ACCELERATE_LAB_SCREENSHOTS`` (when set)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_jupyterlab import jupyterlab
from tests.widgets.test_demos_in_jupyterlab import Lab, opened, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = {
    "setup": (
        "import accelerate_lab as al\n"
        "from accelerate_lab.api.testing import LocalServer, sample_routes\n"
        "server = LocalServer(sample_routes()); server.start()\n"
        "print('READY')"
    ),
    "dashboard": (
        "mgr = al.TensorSharingManager(max_memory_mb=16)\n"
        "mgr.register_shared_tensor('bert.embeddings', [512, 384], producer_model='bert')\n"
        "mgr.register_shared_tensor('vit.patch_embed', [768, 256], producer_model='vit')\n"
        "al.MemoryDashboard(mgr)"
    ),
    "chat": "al.Chat(backend='sample', metadata={'sample_api_url': server.url})",
}


@pytest.fixture(scope="module")
def notebook7(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    pytest.importorskip("notebook", reason="Notebook 7 is the `notebook` package: pip install -e '.[lab]'")
    root = tmp_path_factory.mktemp("notebook7")
    write_notebook(root / "widgets.ipynb", CELLS.values())
    with jupyterlab(root) as (url, token):
        page = chromium.new_page(viewport={"width": 1200, "height": 1000})
        try:
            with opened(page, root, f"{url}/notebooks/widgets.ipynb?token={token}", list(CELLS)) as lab:
                # Notebook 7's own shell, not JupyterLab's
                assert page.locator("#main-panel .jp-Notebook").count() == 1
                assert page.locator(".jp-LabShell").count() == 0
                yield lab
        finally:
            page.close()


def test_dashboard_renders_in_notebook7(notebook7: Lab) -> None:
    cell = notebook7.run("dashboard", ".al-dashboard")
    dashboard = cell.locator(".al-dashboard")
    dashboard.locator("tr[data-tensor='bert.embeddings']").wait_for(timeout=30_000)
    dashboard.locator(".al-dash-row[data-model='vit']").wait_for(timeout=30_000)
    assert "of 16.0 MiB" in dashboard.locator(".al-dash-gauge[data-device='cpu']").inner_text()
    notebook7.shot(dashboard, "notebook7_dashboard.png")


def test_chat_streams_a_reply_in_notebook7(notebook7: Lab) -> None:
    cell = notebook7.run("chat", ".al-chat")
    chat = cell.locator(".al-chat")
    chat.locator("textarea").fill("hello from Notebook 7")
    chat.locator("button.al-chat-send").click()
    chat.locator(".al-chat-assistant:not(.al-chat-live)", has_text="echo: hello from Notebook 7").wait_for(
        timeout=60_000
    )
    notebook7.shot(chat, "notebook7_chat.png")
