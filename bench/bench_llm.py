"""The local LLM (SmolLM2-135M-Instruct, GGUF Q4_1) on accelerate_lab's ops against llama.cpp, same run.

Prints one table: case, ours and llama.cpp (tokens per second, median of the repeats), the ratio
(ours / llama.cpp: higher is better) and the machine. The baseline is upstream ``llama-server`` serving
the same GGUF file on 127.0.0.1 with the same thread count (its own ``timings`` of each /completion:
``prompt_per_second``, ``predicted_per_second``), the same prompt token ids and the same number of
greedy tokens; it is used when a binary exists ($LLAMA_SERVER, or under ~/.cache/accelerate_lab/, as
scripts/setup_llama_server.sh leaves it), else the table says why it is missing. Each thread count
(``--threads 1,2``) is a BLAS thread limit for ours and ``-t`` for llama-server. On the cpu our linear
layers read GGUF's packed blocks with compiled C (`accelerate_lab.hal.cpu_gguf`; one thread, BLAS for
prompts) where it builds, else float32 weights and BLAS (``ACCELERATE_LAB_NATIVE=0`` forces that);
a note names which.
Goal: decode at least 0.5x llama.cpp's tokens per second on the cpu.

``--devices browser`` runs the model wholly on ``browser:webgpu`` in headless Chromium (SwiftShader
here), driven through the browser tier's page harness (tests/browser/harness.py): the weights cross
once, packed, and each step returns one token id; its steps are awaited (``reply_async``) as in a
notebook, and the harness answers each request before the await would wait.

    python bench/bench_llm.py [--threads 1,2] [--repeats 3] [--new-tokens 32] [--devices cpu,wgpu,browser]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # BLAS sizes its pool once, at import: the most threads asked, before numpy loads
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1,2"
    _most = str(max(int(n) for n in _threads.split(",")))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", _most)
    os.environ.setdefault("OMP_NUM_THREADS", _most)

import json
import platform
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal import Device, cpu_native, get_device
from accelerate_lab.models.llm import Generation, Llama, Reply, resolve_gguf

ROOT = Path(__file__).resolve().parents[1]

PROMPT = (
    "You are reviewing a short story for a school magazine. The story follows a lighthouse keeper who finds "
    "a message in a bottle and sets out in a small boat to find its sender. Write a friendly, detailed "
    "review that covers the plot, the characters, the setting and the writing style, and suggest two "
    "improvements."
)
CACHE = Path.home() / ".cache" / "accelerate_lab"
SERVER_GLOBS = (
    "llama-server",
    "*/llama-server",
    "*/bin/llama-server",
    "*/build/bin/llama-server",
    "*/*/bin/llama-server",
)


def find_llama_server() -> Path | None:
    if os.environ.get("LLAMA_SERVER"):
        return Path(os.environ["LLAMA_SERVER"])
    for pattern in SERVER_GLOBS:
        for found in sorted(CACHE.glob(pattern)):
            if found.is_file() and os.access(found, os.X_OK):
                return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict[str, object], timeout: float) -> dict[str, object]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, object] = json.loads(response.read())
    return result


@contextmanager
def llama_server(binary: Path, gguf: Path, threads: int) -> Iterator[str]:
    port = _free_port()
    command = [
        str(binary),
        "-m",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-t",
        str(threads),
        "-c",
        "2048",
        "--no-ui",
        "--no-repack",  # repacking selects ggml's AMX kernels here, whose first tile load faults on this VM
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"llama-server exited with status {process.returncode} ({' '.join(command)})"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        else:
            raise RuntimeError(f"llama-server did not become healthy within 60 s ({' '.join(command)})")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def baseline_run(url: str, prompt_ids: list[int], new_tokens: int) -> tuple[float, float]:
    """llama-server's prompt and decode tokens/s for one greedy completion (its own ``timings``)."""
    body = {
        "prompt": prompt_ids,
        "n_predict": new_tokens,
        "temperature": 0.0,
        "cache_prompt": False,
        "ignore_eos": True,
    }
    timings = _post(f"{url}/completion", body, timeout=300)["timings"]
    assert isinstance(timings, dict) and timings["predicted_n"] == new_tokens, timings
    return float(timings["prompt_per_second"]), float(timings["predicted_per_second"])


@contextmanager
def browser_webgpu() -> Iterator[Device]:
    """``browser:webgpu`` in a page of headless Chromium (large buffers fetched from the page's folder)."""
    sys.path.insert(0, str(ROOT))  # the browser tier's harness lives in tests/
    from playwright.sync_api import sync_playwright

    from tests.browser import harness

    with ExitStack() as stack:
        folder = harness.page_folder(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        url = stack.enter_context(harness.serve(folder))
        playwright = stack.enter_context(sync_playwright())
        chromium = playwright.chromium.launch(
            executable_path=str(harness.CHROMIUM), args=harness.CHROMIUM_ARGS, headless=True
        )
        stack.callback(chromium.close)
        page = chromium.new_page()
        page.goto(f"{url}/page.html")
        page.wait_for_function("window.pageReady === true", timeout=30_000)
        device, _, state = harness.connect_logged(page, spool=folder)
        if state["status"] != "ready":
            raise DeviceError(f"WebGPU did not start in headless Chromium: {state.get('message')}")
        yield device


def _reply(generation: Generation) -> Reply:
    """The reply, awaited step by step on a browser device (the harness answers at once), else read."""
    if generation.network.device.info().kind != "browser":
        return generation.reply()
    from tests.browser.harness import complete

    return complete(generation.reply_async())


def our_run(llm: Llama, prompt_ids: list[int], new_tokens: int) -> tuple[float, float]:
    """Our prompt and decode tokens/s for one greedy generation."""
    stats = _reply(llm.generate(prompt_ids, max_new_tokens=new_tokens, stop_token_ids=())).stats
    return stats.prompt_tokens_per_second, stats.decode_tokens_per_second


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median prompt and decode rates of ``runs``."""
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _row(case: str, ours: float, base: float | None) -> tuple[str, str, str, str]:
    if base is None:
        return case, f"{ours:.1f}", "-", "-"
    return case, f"{ours:.1f}", f"{base:.1f}", f"{ours / base:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (BLAS / llama -t)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--devices", default="cpu", help="comma-separated: cpu, wgpu, ...")
    args = parser.parse_args()

    gguf = resolve_gguf()
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = [f"load average at the start {os.getloadavg()[0]:.1f}"]
    binary = find_llama_server()
    prompt_ids: list[int] = []
    stack = ExitStack()
    for device in args.devices.split(","):
        try:
            target = stack.enter_context(browser_webgpu()) if device == "browser" else get_device(device)
            info = target.info()
        except (DeviceError, ImportError) as error:
            notes.append(f"{device}: unavailable ({error})")
            continue
        llm = Llama.from_pretrained(gguf, target)
        prompt_ids = llm.prompt_ids(PROMPT)
        cpu = device == "cpu"
        new_tokens = args.new_tokens if cpu else min(args.new_tokens, 4)  # lavapipe, SwiftShader: slow
        for threads in [int(n) for n in args.threads.split(",")] if cpu else [1]:
            # ours and llama.cpp alternate run by run, so a change of the machine's load hits both
            with threadpool_limits(limits=threads, user_api="blas"), ExitStack() as server:
                url = server.enter_context(llama_server(binary, gguf, threads)) if cpu and binary else None
                _reply(llm.generate(prompt_ids, max_new_tokens=2, stop_token_ids=()))  # warm-up, as theirs
                ours_runs, base_runs = [], []
                for _ in range(args.repeats if cpu else 1):
                    ours_runs.append(our_run(llm, prompt_ids, new_tokens))
                    if url is not None:
                        base_runs.append(baseline_run(url, prompt_ids, new_tokens))
            ours = medians(ours_runs)
            base = medians(base_runs) if base_runs else None
            label = f"{device} {threads}t" if cpu else device
            rows.append(_row(f"{label} prompt ({len(prompt_ids)} tokens)", ours[0], base and base[0]))
            rows.append(_row(f"{label} decode ({new_tokens} tokens)", ours[1], base and base[1]))
        notes.append(f"{device}: {info.description}")
        if cpu:
            cpu_native.load("gguf")
            notes.append(f"cpu packed kernels: {cpu_native.native_status()['gguf']}")
    stack.close()
    if binary is None:
        notes.append(
            "llama.cpp baseline unavailable: no llama-server binary in $LLAMA_SERVER or under "
            f"{CACHE} (scripts/setup_llama_server.sh builds it, ~30 min on 2 cores)"
        )
    else:
        notes.append(f"llama.cpp: {binary} --no-repack (its AMX kernels fault on this VM's CPU)")
    header = ("case", "ours tok/s", "llama.cpp tok/s", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"# {gguf.name}, {len(prompt_ids)}-token prompt, greedy, median of {args.repeats}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load average at the end {os.getloadavg()[0]:.1f}"
    )
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
