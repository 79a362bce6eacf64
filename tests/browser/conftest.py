"""Fixtures of the browser tiers: the bundle, Debian's Chromium, and a page with the BrowserDevice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from accelerate_lab.hal import register_device, unregister_device
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from tests.browser.harness import BUNDLE, CHROMIUM, CHROMIUM_ARGS, connect, open_page, page_folder


def require_browser_tools() -> None:
    """Fail in CI (where everything must be installed), skip elsewhere, naming what is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if not BUNDLE.exists():
        missing.append(f"the widget bundle {BUNDLE} (bash scripts/build_widget.sh .venv)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("Python Playwright (pip install -e '.[browser]')")
    if missing:
        message = "browser tier needs " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_browser_tools()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with open_page(chromium, page_folder(tmp_path_factory.mktemp("page"))) as tab:
        yield tab


@pytest.fixture(scope="module")
def browser_device(page: Any) -> Iterator[BrowserProxyDevice]:
    """``browser:webgpu`` registered in the kernel, talking to a fake model of the page."""
    device, state = connect(page)
    assert state["status"] == "ready", f"WebGPU did not start in headless Chromium: {state.get('message')}"
    register_device(device.name, lambda: device, replace=True)
    yield device
    unregister_device(device.name)
