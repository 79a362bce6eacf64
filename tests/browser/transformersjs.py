"""transformers.js (npm ``@huggingface/transformers``) in the test page beside the BrowserDevice bundle,
running the same weights as ours: exported to ONNX from the same safetensors, served from a local model
folder, nothing fetched from a hub. The baseline of bench/bench_browser_models.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tests.browser import harness
from tests.models.onnx_export import export_last_hidden_state

NODE_MODULES = harness.ROOT / "widget" / "node_modules"
TRANSFORMERS_JS = NODE_MODULES / "@huggingface" / "transformers" / "dist"
ONNXRUNTIME_WEB = NODE_MODULES / "onnxruntime-web" / "dist"
MODEL = "model"
_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

# Threads: all the cores where the page is cross-origin isolated (SharedArrayBuffer), else one.
_LOAD = """async ([model, device]) => {
  const tjs = await import("./transformers/transformers.js");
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = "/models/";
  tjs.env.useBrowserCache = false;
  tjs.env.backends.onnx.wasm.wasmPaths = new URL("./onnxruntime-web/", location.href).href;
  tjs.env.backends.onnx.wasm.numThreads = crossOriginIsolated ? navigator.hardwareConcurrency : 1;
  window.transformersjs = await tjs.pipeline("feature-extraction", model, { device, dtype: "fp32" });
  return tjs.env.backends.onnx.wasm.numThreads;
}"""
_EMBED = """async (texts) => {
  const out = await window.transformersjs(texts, { pooling: "mean", normalize: true });
  return Array.from(out.data);
}"""


def model_folder(source: Path, target: Path) -> Path:
    """``source``'s model in transformers.js's layout: its config and tokenizer files, and
    ``onnx/model.onnx`` exported from its weights."""
    from transformers import AutoModel

    target.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    export_last_hidden_state(AutoModel.from_pretrained(source).eval(), target / "onnx" / "model.onnx")
    return target


def page_folder(target: Path, model: Path) -> Path:
    """The test page with transformers.js, onnxruntime-web's WASM files and ``model`` linked beside it."""
    harness.page_folder(target)
    links = {"transformers": TRANSFORMERS_JS, "onnxruntime-web": ONNXRUNTIME_WEB, f"models/{MODEL}": model}
    for name, destination in links.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).symlink_to(destination, target_is_directory=True)
    return target


def load(page: Any, device: str) -> int:
    """A feature-extraction pipeline of the served model on ``device`` (``webgpu`` or ``wasm``); returns
    the WASM thread count."""
    threads: int = page.evaluate(_LOAD, [MODEL, device])
    return threads


def embed(page: Any, texts: list[str]) -> np.ndarray:
    """Sentence embeddings from the loaded pipeline: mean pooling and L2 norm, as sentence-transformers."""
    flat = page.evaluate(_EMBED, texts)
    return np.asarray(flat, np.float32).reshape(len(texts), -1)
