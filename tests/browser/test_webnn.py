"""The WebNN tier: ``browser:webnn`` in the Chromium of ``@sparticuz/chromium`` (its WebNN computes on the
CPU), against the cpu device (numpy) on the same inputs, through the fast tier's page with a fake model.

Debian's Chromium has ``navigator.ml`` but no WebNN backend, so this tier launches the npm package's
Chromium (installed by scripts/build_widget.sh into the cached node_modules); its ``executablePath()``
unpacks the binary once into ~/.cache/accelerate_lab/sparticuz-<version>/.

Tolerances: WebNN's CPU backend evaluates exp, erf, tanh and their kin with its own approximations
and may reorder sums, so float results are compared at rtol = atol = 1e-4 (3e-4 where a result
composes several of them); integer, boolean and layout results must be exact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal import get_device, register_device, unregister_device
from accelerate_lab.hal.browser_errors import BrowserDataPending
from accelerate_lab.hal.browser_webnn import BrowserWebnnDevice
from tests.browser.conftest import require_browser_tools
from tests.browser.harness import CHROMIUM_ARGS, ROOT, PageTransport, host, open_tab, page_folder, serve
from tests.browser.test_kernels import CASES, run_kernel

pytestmark = pytest.mark.browser

PACKAGE = ROOT / "widget" / "node_modules" / "@sparticuz" / "chromium"
CACHE = Path(os.environ.get("ACCELERATE_LAB_CACHE", Path.home() / ".cache" / "accelerate_lab"))
WEBNN_ARGS = [*CHROMIUM_ARGS, "--enable-features=WebMachineLearningNeuralNetwork"]

# kernels that have no WebNN form (in-place writes, scatters, index-checked gathers, backward
# convolutions) or that this context lacks for the case's data type or rank: they run with WebGPU
WEBGPU_CASES = {
    "add-uint8-wraps",  # no uint8 add in WebNN
    "mul-bool",  # no uint8 mul
    "embedding",
    "embedding_backward",
    "conv_backward_input",
    "conv_backward_weight",
    "setitem",
    "setitem-scalar",
    "index_backward",
    "matmul_q8",  # int8 weights with scales: not lowered to WebNN (dequantizeLinear) here
    "matmul_q8-no-bias",
    "matmul_q4_1",  # GGUF blocks: read packed by their WGSL kernel
    "matmul_q8_0",
}
COMPOSED = {"gelu-tanh", "silu", "log_softmax", "var", "sdpa", "sdpa-causal", "sdpa-bool-mask", "layer_norm"}


def sparticuz_chromium() -> Path:
    """The package's Chromium, unpacked once per version into the cache (never inside the repo)."""
    version = json.loads((PACKAGE / "package.json").read_text())["version"]
    folder = CACHE / f"sparticuz-{version}"
    binary = folder / "chromium"
    if binary.exists():
        return binary
    partial = folder.with_name(folder.name + ".partial")  # renamed when complete: no half-unpacked binary
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    script = "import c from '@sparticuz/chromium'; console.log(await c.executablePath())"
    subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=ROOT / "widget",
        env={**os.environ, "TMPDIR": str(partial)},  # executablePath() unpacks into os.tmpdir()
        check=True,
        timeout=300,
        capture_output=True,
    )
    partial.rename(folder)
    return binary


@pytest.fixture(scope="module")
def webnn_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_browser_tools()
    if not PACKAGE.exists() or shutil.which("node") is None:
        message = f"the WebNN tier needs node and {PACKAGE} (bash scripts/build_widget.sh .venv)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    executable = sparticuz_chromium()
    folder = page_folder(tmp_path_factory.mktemp("webnn-page"))
    with sync_playwright() as p, serve(folder) as url:
        browser = p.chromium.launch(executable_path=str(executable), args=WEBNN_ARGS, headless=True)
        with open_tab(browser, url, timeout_ms=60_000) as tab:
            yield tab
        browser.close()


def _connect(page: Any) -> BrowserWebnnDevice:
    """A fresh fake model in the page (its own WebNN context) and the kernel side talking to it."""
    connected = page.evaluate("(render) => window.connect(render)", False)
    state = connected["state"]
    assert state["webnn"]["available"], f"no WebNN context: {state['webnn']['reason']}"
    transport = PageTransport(page, connected["index"])
    summary = {"webnn": state["webnn"], "webgpu": state["status"] == "ready"}
    device = BrowserWebnnDevice(transport, summary=summary)
    transport.device = device
    return device


@pytest.fixture(scope="module")
def webnn_device(webnn_page: Any) -> BrowserWebnnDevice:
    return _connect(webnn_page)


@pytest.fixture
def webnn(webnn_device: BrowserWebnnDevice) -> Iterator[BrowserWebnnDevice]:
    """``browser:webnn`` registered for one test (the registry is reset after each)."""
    register_device(webnn_device.name, lambda: webnn_device, replace=True)
    yield webnn_device
    unregister_device(webnn_device.name)


@pytest.fixture
def fresh_webnn(webnn_page: Any) -> Iterator[BrowserWebnnDevice]:
    """A new ``browser:webnn`` (its counters and its warn-once memory start empty)."""
    device = _connect(webnn_page)
    register_device(device.name, lambda: device, replace=True)
    yield device
    unregister_device(device.name)


def _fetch(device: BrowserWebnnDevice, buffer: Any) -> np.ndarray:
    with contextlib.suppress(BrowserDataPending):
        return device.download(buffer)
    return device.download(buffer)


def _tolerance(case: str, rtol: float) -> float:
    if rtol == 0:
        return 0.0
    return 3e-4 if case in COMPOSED else max(rtol, 1e-4)


@pytest.mark.filterwarnings("ignore:browser.webnn runs:RuntimeWarning")
@pytest.mark.parametrize(("case", "kernel", "inputs", "params", "rtol"), CASES, ids=[c[0] for c in CASES])
def test_kernel_matches_numpy_as_webnn_graph_or_webgpu_fallback(
    webnn: BrowserWebnnDevice,
    case: str,
    kernel: str,
    inputs: Sequence[Any],
    params: Mapping[str, object],
    rtol: float,
) -> None:
    before = sum(webnn.webnn_stats.webgpu_fallbacks.values())
    want = np.asarray(run_kernel(get_device("cpu"), kernel, inputs, params))
    got = _fetch(webnn, run_kernel(webnn, kernel, inputs, params))
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    tolerance = _tolerance(case, rtol)
    if tolerance:
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
    else:
        np.testing.assert_array_equal(got, want)
    fell_back = sum(webnn.webnn_stats.webgpu_fallbacks.values()) > before
    assert fell_back == (case in WEBGPU_CASES), f"{case}: fallbacks {webnn.webnn_stats.webgpu_fallbacks}"


def test_op_sequence_runs_as_one_cached_graph(webnn: BrowserWebnnDevice) -> None:
    rng = np.random.default_rng(7)

    def block(x: al.Tensor, w: al.Tensor, b: al.Tensor) -> al.Tensor:
        return al.softmax(al.layer_norm(al.gelu(al.relu(x @ w) + b)), axis=-1)

    def reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        h = np.maximum(x @ w, 0) + b
        g = np.asarray(get_device("cpu").run("gelu", [h], {"approximate": "none"}))
        n = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)
        e = np.exp(n - n.max(-1, keepdims=True))
        return np.asarray(e / e.sum(-1, keepdims=True))

    built, hits = webnn.webnn_stats.graphs_built, webnn.webnn_stats.graph_cache_hits
    for attempt in range(2):  # the second run has new data and the same op sequence
        arrays = [rng.standard_normal(s).astype(np.float32) for s in ((8, 16), (16, 32), (32,))]
        out = host(block(*(al.tensor(a, device=webnn.name) for a in arrays)))
        np.testing.assert_allclose(out, reference(*arrays), rtol=3e-4, atol=3e-5)
        assert (webnn.webnn_stats.graphs_built, webnn.webnn_stats.graph_cache_hits) == (
            built + 1,
            hits + attempt,
        )
    page_built, page_hits = webnn.browser_memory["graphs_built"], webnn.browser_memory["graph_cache_hits"]
    assert isinstance(page_built, int | float) and isinstance(page_hits, int | float)  # JSON numbers
    assert page_built >= 1 and page_hits >= 1


def test_intermediates_python_holds_come_out_of_the_same_graph(webnn: BrowserWebnnDevice) -> None:
    x_host = np.random.default_rng(8).standard_normal((5, 6)).astype(np.float32)
    x = al.tensor(x_host, device=webnn.name)
    hidden = al.relu(x @ x.T)
    out = al.exp(-hidden)
    graphs = webnn.webnn_stats.graphs_built + webnn.webnn_stats.graph_cache_hits
    np.testing.assert_allclose(host(out), np.exp(-np.maximum(x_host @ x_host.T, 0)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(host(hidden), np.maximum(x_host @ x_host.T, 0), rtol=1e-5, atol=1e-5)
    assert webnn.webnn_stats.graphs_built + webnn.webnn_stats.graph_cache_hits == graphs + 1


def test_op_outside_the_context_runs_with_webgpu_visibly(fresh_webnn: BrowserWebnnDevice) -> None:
    webnn = fresh_webnn
    rng = np.random.default_rng(9)
    a_host, b_host = (rng.integers(0, 256, (3, 7), dtype=np.uint8) for _ in range(2))
    f_host = rng.standard_normal((3, 7)).astype(np.float32)
    a, b, f = (al.tensor(v, device=webnn.name) for v in (a_host, b_host, f_host))
    with pytest.warns(RuntimeWarning, match="runs 'add' with WebGPU: this WebNN context has no add on uint8"):
        wrapped = a + b  # uint8 arithmetic wraps, and WebNN has no uint8 add: WebGPU runs it
    out = al.relu(f * 2.0) + wrapped  # graphs on both sides of the fallback (float32 add: WebNN)
    np.testing.assert_array_equal(host(wrapped), a_host + b_host)
    np.testing.assert_allclose(host(out), np.maximum(f_host * 2, 0) + (a_host + b_host), rtol=1e-6)
    assert webnn.webnn_stats.webgpu_fallbacks == {"add": 1}
    assert webnn.browser_memory["fallback_runs"] == 1


def test_rank_beyond_the_context_limit_runs_with_webgpu(fresh_webnn: BrowserWebnnDevice) -> None:
    webnn = fresh_webnn
    rng = np.random.default_rng(10)
    a_host = rng.standard_normal((2, 1, 2, 1, 3, 4)).astype(np.float32)  # matmul takes ranks 2..5 here
    b_host = rng.standard_normal((1, 2, 1, 2, 4, 5)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="matmul for ranks 2..5 only"):
        out = al.tensor(a_host, device=webnn.name) @ al.tensor(b_host, device=webnn.name)
    np.testing.assert_allclose(host(out), a_host @ b_host, rtol=1e-5, atol=1e-5)
    assert webnn.webnn_stats.webgpu_fallbacks == {"matmul": 1}
