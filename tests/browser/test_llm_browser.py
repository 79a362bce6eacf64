"""The shipped SmolLM2 wholly on ``browser:webgpu`` (the bundle's WGSL in headless Chromium, SwiftShader):
its packed GGUF weights cross once, every step's network runs in the page, and each step returns only
the greedy token id; the tokens equal the cpu's. Through the model's async streaming and through the
`local` API backend's ``astream_chat``. SwiftShader needs seconds a token: a short prompt, few tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import pytest

from accelerate_lab.api.backends.local import LocalBackend, release_local_models
from accelerate_lab.hal import register_device, unregister_device
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.models.llm import Llama
from tests.browser.conftest import chromium  # noqa: F401  (the browser of the browser tier)
from tests.browser.harness import Crossed, PageTransport, complete, connect_logged, open_page, page_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]  # 18 tokens
T = TypeVar("T")


def drained(stream: AsyncIterator[T]) -> list[T]:
    """Every item of ``stream``: the test page answers each request at once, so nothing waits."""

    async def collect() -> list[T]:
        return [item async for item in stream]

    return complete(collect())


def crossed(log: list[Crossed]) -> tuple[int, int, int, int]:
    """Upload commands, bytes sent, download commands and bytes returned in ``log``."""
    uploads = sum(c["op"] == "upload" for b in log for c in b.commands)
    downloads = sum(c["op"] == "download" for b in log for c in b.commands)
    return uploads, sum(b.sent_bytes for b in log), downloads, sum(b.returned_bytes for b in log)


@pytest.fixture(scope="module")
def browser(
    chromium: Any,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BrowserProxyDevice, PageTransport]]:
    """``browser:webgpu`` registered, talking to a page that fetches large buffers from its folder."""
    folder = page_folder(tmp_path_factory.mktemp("llm-page"))
    with open_page(chromium, folder) as tab:
        device, transport, state = connect_logged(tab, spool=folder)
        assert state["status"] == "ready", (
            f"WebGPU did not start in headless Chromium: {state.get('message')}"
        )
        register_device(device.name, lambda: device, replace=True)  # for the model's loading
        yield device, transport
        release_local_models()


@pytest.fixture(autouse=True)
def registered(browser: tuple[BrowserProxyDevice, PageTransport]) -> Iterator[None]:
    """``browser:webgpu`` in the device registry during each test (the registry is reset after each)."""
    register_device(browser[0].name, lambda: browser[0], replace=True)
    yield
    unregister_device(browser[0].name)


@pytest.fixture(scope="module")
def backend(browser: tuple[BrowserProxyDevice, PageTransport]) -> LocalBackend:
    return LocalBackend(metadata={"local_device": "browser:webgpu", "local_max_context": 32})


@pytest.fixture(scope="module")
def on_browser(browser: tuple[BrowserProxyDevice, PageTransport], backend: LocalBackend) -> Llama:
    """The backend's model, loaded onto the browser: its packed weights cross in full, exactly once."""
    device, transport = browser
    transport({"kind": "clear-cache"}, [])  # none cached by an earlier run: the weights cross in full
    start = len(transport.log)
    llm = backend.model()
    device.flush()
    weights = [c for b in transport.log[start:] for c in b.commands if c["op"] == "cached"]
    _, sent, downloads, _ = crossed(transport.log[start:])
    swap = 4 * llm.config.head_dim**2  # the rotary embedding's fixed 0/±1 matrix goes with them
    assert sent == sum({c["hash"]: c["nbytes"] for c in weights}.values()) + swap and downloads == 0
    layer = llm.network.weights.layers[0]
    assert (layer.qkv.kernel, llm.network.weights.output.kernel) == ("matmul_q4_1", "matmul_q8_0")
    assert sent < 100e6  # packed: about 0.6 byte a weight (float32 would be 540 MB)
    return llm


@pytest.fixture(scope="module")
def on_cpu() -> Llama:
    return Llama.from_pretrained(max_context=32)


def test_smollm2_streams_the_cpus_greedy_tokens_downloading_one_id_per_step(
    browser: tuple[BrowserProxyDevice, PageTransport], on_browser: Llama, on_cpu: Llama
) -> None:
    transport = browser[1]
    start = len(transport.log)
    generation = on_browser.stream_chat(MESSAGES, max_new_tokens=3, stop_token_ids=())
    pieces = drained(generation)
    stats = generation.stats
    assert stats is not None and stats.finish_reason == "length"
    expected = on_cpu.chat(MESSAGES, max_new_tokens=3, stop_token_ids=())
    assert generation.token_ids == list(expected.token_ids) and "".join(pieces) == expected.text
    uploads, sent, downloads, returned = crossed(transport.log[start:])
    # each step (the prompt's, then one per new token but the last) returns one int64 id, nothing else
    assert (downloads, returned) == (3, 3 * 8)
    # and sends only its embedding rows and rotary tables (and the prompt's mask, and one zero that the
    # KV cache's buffers are allocated like): no weight again, no zeros for the cache
    assert uploads == 3 * 3 + 1 + 1 and sent < 64 << 10
    assert not browser[0].stats.cpu_fallbacks
    print(
        f"\nSmolLM2 on {browser[0].info().description}: prompt {stats.prompt_tokens} tokens in "
        f"{stats.prompt_seconds:.1f} s, decode {stats.decode_tokens_per_second:.2f} tokens/s"
    )


def test_local_backends_astream_chat_runs_the_model_in_the_browser(
    backend: LocalBackend, on_browser: Llama, on_cpu: Llama
) -> None:
    chunks = drained(backend.astream_chat(None, MESSAGES, max_tokens=2, timeout=300))
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].finish_reason == "length" and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 2
    assert "".join(c.text for c in chunks) == on_cpu.chat(MESSAGES, max_new_tokens=2).text
    assert backend.status()["active"] == 0
