"""The BrowserDevice's worker (widget/src/worker.ts) in headless Chromium: a long batch runs off the page's
main thread (a setTimeout loop in the page keeps ticking), shows its progress in the model's state, and
a cancel (the view's button, or the kernel's message) stops it with `BrowserCancelled`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.hal.browser_errors import BrowserCancelled, BrowserDataPending
from tests.browser.harness import PageTransport, host

pytestmark = pytest.mark.browser

rng = np.random.default_rng(21)
STEPS = 3000  # pairs of elementwise ops in one batch: seconds of work on SwiftShader

# the longest gap between the page's setTimeout(0) ticks (its main thread busy), and the progress seen
PROBE = """(index) => {
  window.gap = 0;
  window.ticking = true;
  window.progress = [];
  let last = performance.now();
  const tick = () => {
    const now = performance.now();
    window.gap = Math.max(window.gap, now - last);
    last = now;
    if (window.ticking) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  window.models_on(index, "change:progress", () => window.progress.push(window.state(index).progress));
}"""


@pytest.fixture
def device(page: Any) -> Iterator[tuple[BrowserProxyDevice, PageTransport]]:
    """``browser:webgpu`` with a view, sending everything recorded as one batch."""
    connected = page.evaluate("() => window.connect(true)")
    assert connected["state"]["status"] == "ready", connected["state"].get("message")
    transport = PageTransport(page, connected["index"])
    dev = BrowserProxyDevice(transport, summary=connected["state"], max_commands=10**6)
    transport.device = dev
    al.hal.register_device(dev.name, lambda: dev, replace=True)
    yield dev, transport
    al.hal.unregister_device(dev.name)


def long_chain(x: np.ndarray, steps: int = STEPS) -> tuple[al.Tensor, np.ndarray]:
    """``steps`` pairs of dependent elementwise ops on ``x`` in the browser, and the same in numpy."""
    t, ref = al.tensor(x, device="browser:webgpu"), x.copy()
    for i in range(steps):
        scale = np.float32(1 + (i % 7) * 1e-4)
        t, ref = t * float(scale) - 1e-4, ref * scale - np.float32(1e-4)
    return t, ref


def awaited(t: al.Tensor) -> list[BaseException]:
    """The error awaiting ``t``'s data raised (none: it arrived)."""
    try:
        asyncio.run(t.numpy_async(timeout=60))
    except BaseException as error:  # the test inspects whatever it was
        return [error]
    return []


def test_a_long_batch_leaves_the_page_responsive_and_shows_progress(
    page: Any, device: tuple[BrowserProxyDevice, PageTransport]
) -> None:
    _, transport = device
    x = rng.standard_normal((64, 64)).astype(np.float32)
    host(
        long_chain(x, 10)[0]
    )  # compiles the pipelines (SwiftShader does it in the GPU process's main thread)
    t, ref = long_chain(x)
    page.evaluate(PROBE, transport.index)
    start = time.perf_counter()
    out = host(t)  # the batch (STEPS runs and a download) goes now, and its reply comes back
    run = (time.perf_counter() - start) * 1000
    gap = page.evaluate("() => { window.ticking = false; return window.gap; }")
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert run > 1000, f"the batch took {run:.0f} ms: too short to show anything"
    # run on the page's main thread, recording the batch alone stalls it for about 40% of the run
    assert gap < run / 5, f"the page's main thread stalled {gap:.0f} ms during a {run:.0f} ms batch"
    progress = page.evaluate("() => window.progress.filter((p) => p !== null)")
    assert progress, "no progress was shown during the batch"
    commands = len(transport.log[-1].commands)
    assert all(p["total"] == commands and 0 <= p["done"] < commands for p in progress)
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
    assert page.evaluate(f"() => window.state({transport.index}).progress") is None  # gone when it ends


@pytest.mark.parametrize("how", ["button", "message"])
def test_cancel_stops_a_long_batch_with_a_typed_error(
    page: Any, device: tuple[BrowserProxyDevice, PageTransport], how: str
) -> None:
    dev, transport = device
    x = rng.standard_normal((64, 64)).astype(np.float32)
    t, _ = long_chain(x)
    transport.later = True
    start = time.perf_counter()
    with pytest.raises(BrowserDataPending):
        t.numpy()  # sends the batch, which runs in the page while this test goes on
    # the kernel awaits the data in its event loop (a thread here: Playwright's calls stay on this one)
    outcome: list[BaseException] = []
    waiting = threading.Thread(target=lambda: outcome.extend(awaited(t)))
    waiting.start()
    while not any(r.waiters for r in dev._requests.values()):
        time.sleep(0.01)
    page.wait_for_function(f"() => window.state({transport.index}).progress !== null", timeout=60_000)
    if how == "button":
        page.click("#view button.al-bd-cancel:visible")  # the view of this test's device
    else:  # what BrowserDevice.cancel() sends
        page.evaluate("(i) => window.tell(i, {kind: 'cancel'})", transport.index)
    transport.collect()
    cancelled = (time.perf_counter() - start) * 1000
    waiting.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], BrowserCancelled), outcome
    assert "cancelled" in str(outcome[0])
    transport.later = False
    # the device goes on: a new batch computes right, and took far less than the cancelled one would
    y = al.tensor(x, device="browser:webgpu") * 2.0
    np.testing.assert_array_equal(host(y), x * 2)
    start = time.perf_counter()
    full, ref = long_chain(x)
    np.testing.assert_allclose(host(full), ref, rtol=1e-4, atol=1e-5)
    assert cancelled < (time.perf_counter() - start) * 1000
