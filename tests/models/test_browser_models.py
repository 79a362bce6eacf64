"""The fast browser tier for models: tiny random BERT, ViT, CLIP and Whisper wholly on ``browser:webgpu``
(the bundle's WGSL in headless Chromium), through their awaitable methods, against transformers; the
weights cross once, at load, and each call sends only its inputs and returns only its outputs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.models import BERT, CLIP, ViT, Whisper
from accelerate_lab.models.whisper.model import DecodingSettings
from tests.browser.conftest import chromium, page  # noqa: F401  (the page fixtures of the browser tier)
from tests.browser.harness import Crossed, PageTransport, complete, connect_logged
from tests.models.conftest import cosine, max_relative_error

pytestmark = pytest.mark.browser

WORDS = ["a", "cat", "dog", "sat", "on", "the", "mat", "ran", "far", "away", "hello", "world", "!", "."]


@pytest.fixture(scope="module")
def browser(page: Any) -> tuple[BrowserProxyDevice, PageTransport]:  # noqa: F811
    device, transport, state = connect_logged(page)
    assert state["status"] == "ready", f"WebGPU did not start in headless Chromium: {state.get('message')}"
    return device, transport


@pytest.fixture(scope="module")
def tiny_bert_with_tokenizer(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT with a small WordPiece tokenizer (its vocabulary fits the model's 99 ids)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    folder = tmp_path_factory.mktemp("tiny-bert-tokenized")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert_dir / name, folder / name)
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.save(str(folder / "tokenizer.json"))
    return folder


def _since(transport: PageTransport, start: int) -> Iterator[Crossed]:
    return iter(transport.log[start:])


def _crossed(transport: PageTransport, start: int) -> tuple[int, int, int, int]:
    """Upload commands, bytes sent, download commands and bytes returned since log entry ``start``."""
    batches = list(_since(transport, start))
    uploads = sum(c["op"] == "upload" for b in batches for c in b.commands)
    downloads = sum(c["op"] == "download" for b in batches for c in b.commands)
    return uploads, sum(b.sent_bytes for b in batches), downloads, sum(b.returned_bytes for b in batches)


def _load(cls: Any, folder: Path, browser: tuple[BrowserProxyDevice, PageTransport], dtype: str) -> Any:
    """A model on the browser device; its weights must cross in full, exactly once, while it loads."""
    device, transport = browser
    device.flush()
    transport({"kind": "clear-cache"}, [])  # none cached by an earlier load: the weights cross in full
    start = len(transport.log)
    model = cls.from_pretrained(folder, device, dtype=dtype)
    device.flush()
    _, sent, downloads, _ = _crossed(transport, start)
    weights = [c for b in _since(transport, start) for c in b.commands if c["op"] == "cached"]
    assert sum(c["nbytes"] for c in weights) == model.weight_bytes  # every weight goes by its hash,
    assert sent == sum({c["hash"]: c["nbytes"] for c in weights}.values()) and downloads == 0  # once
    return model


def _sentence_embeddings(folder: Path, texts: list[str]) -> np.ndarray:
    """sentence-transformers' mean pooling and L2 norm over transformers' BertModel."""
    from transformers import BertModel

    from accelerate_lab.models.text import TextTokenizer

    tokens = TextTokenizer(folder / "tokenizer.json", 64)(texts)
    with torch.no_grad():
        hidden = (
            BertModel.from_pretrained(folder)
            .eval()(
                input_ids=torch.tensor(tokens.input_ids), attention_mask=torch.tensor(tokens.attention_mask)
            )
            .last_hidden_state.numpy()
        )
    mask = tokens.attention_mask[..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    out: np.ndarray = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)  # numpy: keepdims gives Any
    return out


@pytest.mark.parametrize("dtype", ["fp32", "q8"])
def test_bert_embeds_in_the_browser_sending_only_token_ids(
    browser: tuple[BrowserProxyDevice, PageTransport], tiny_bert_with_tokenizer: Path, dtype: str
) -> None:
    texts = ["A cat sat on the mat.", "Hello world!", "the dog ran far away"]
    bert = _load(BERT, tiny_bert_with_tokenizer, browser, dtype)
    expected = (
        _sentence_embeddings(tiny_bert_with_tokenizer, texts)
        if dtype == "fp32"
        else BERT.from_pretrained(tiny_bert_with_tokenizer, dtype="q8").embed(texts)
    )
    assert bert.tokenizer is not None
    grid = bert.tokenizer(texts).input_ids.size
    for _ in range(2):  # the second call re-sends nothing of the model
        start = len(browser[1].log)
        ours = complete(bert.embed_async(texts))
        assert ours.shape == expected.shape and max_relative_error(ours, expected) < 1e-4
        uploads, sent, downloads, returned = _crossed(browser[1], start)
        # ids, the attention mask as int32 (for attention) and as float32 (for pooling); one download
        assert (uploads, sent, downloads, returned) == (3, 3 * 4 * grid, 1, ours.nbytes)


def test_vit_classifies_in_the_browser_returning_only_probabilities(
    browser: tuple[BrowserProxyDevice, PageTransport], tiny_vit_dir: Path, picture: np.ndarray
) -> None:
    from transformers import ViTForImageClassification

    vit = _load(ViT, tiny_vit_dir, browser, "fp32")
    start = len(browser[1].log)
    ours = complete(vit.classify_async(picture, top_k=5))
    uploads, sent, downloads, returned = _crossed(browser[1], start)
    assert (uploads, sent, downloads, returned) == (1, 3 * 32 * 32 * 4, 1, 5 * 4)
    with torch.no_grad():
        logits = (
            ViTForImageClassification.from_pretrained(tiny_vit_dir)
            .eval()(pixel_values=torch.from_numpy(vit.preprocess([picture])))
            .logits
        )
    probs = torch.softmax(logits, -1).numpy()[0]
    assert [label for label, _ in ours] == [f"class {i}" for i in np.argsort(-probs, kind="stable")]
    np.testing.assert_allclose([p for _, p in ours], np.sort(probs)[::-1], atol=1e-5)


def test_clip_zero_shot_in_the_browser_matches_transformers(
    browser: tuple[BrowserProxyDevice, PageTransport], tiny_clip_dir: Path, picture: np.ndarray
) -> None:
    from transformers import CLIPModel

    clip = _load(CLIP, tiny_clip_dir, browser, "fp32")
    labels = ["cat", "dog", "tree"]
    start = len(browser[1].log)
    ours = dict(complete(clip.zero_shot_async(picture, labels)))
    _, _, downloads, returned = _crossed(browser[1], start)
    assert (downloads, returned) == (1, len(labels) * 4)
    assert clip.tokenizer is not None and clip.preprocess is not None
    tokens = clip.tokenizer([f"a photo of a {label}." for label in labels])
    with torch.no_grad():
        out = CLIPModel.from_pretrained(tiny_clip_dir).eval()(
            input_ids=torch.tensor(tokens.input_ids),
            attention_mask=torch.tensor(tokens.attention_mask),
            pixel_values=torch.from_numpy(clip.preprocess([picture])),
        )
    expected = torch.softmax(out.logits_per_image, -1).numpy()[0]
    np.testing.assert_allclose([ours[label] for label in labels], expected, atol=1e-5)
    text = complete(clip.embed_text_async([f"a photo of a {label}." for label in labels]))
    assert cosine(text, out.text_embeds.numpy()).min() > 0.99999


def test_whisper_decodes_in_the_browser_one_round_trip_per_token(
    browser: tuple[BrowserProxyDevice, PageTransport], tiny_whisper_dir: Path
) -> None:
    settings = DecodingSettings(prompt=(1,), end=2, suppress=(), suppress_at_begin=())
    whisper = _load(Whisper, tiny_whisper_dir, browser, "fp32")
    whisper.settings = settings
    features = np.random.default_rng(3).standard_normal((1, 80, 100)).astype(np.float32)
    start = len(browser[1].log)
    ours = complete(whisper.generate_async(features, max_new_tokens=8))
    uploads, _, downloads, returned = _crossed(browser[1], start)
    steps = min(len(ours[0]) + 1, 8)  # the end token's step is one more round trip
    assert (downloads, returned) == (steps, steps * 8)  # one int64 id per step
    assert uploads == 4  # the features, the prompt, and the two suppression masks (on first use only)
    # the same greedy loop on the cpu (tests/models/test_whisper.py checks it against transformers)
    reference = Whisper.from_pretrained(tiny_whisper_dir)
    reference.settings = settings
    assert ours == reference.generate(features, max_new_tokens=8)
