"""The browser tier's fixtures (Debian's Chromium through Playwright), shared with tests/browser."""

from tests.browser.conftest import chromium

__all__ = ["chromium"]
