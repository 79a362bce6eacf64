"""Model precisions against float32: the ``matmul_q8`` kernel on each device, ``dtype="q8"`` and
``dtype="fp16"`` models (real all-MiniLM-L6-v2 and Whisper tiny.en on the cpu, tiny random models on
every device), the bytes each precision saves, and the errors for precisions a device cannot run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accelerate_lab.hal import DeviceInfo, get_device
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.models import BERT, CLIP, PrecisionUnsupportedError, ViT, Whisper
from accelerate_lab.models.precision import check_precision, quantize_q8
from tests.models.conftest import cosine

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Hello!",
    "Sentence embeddings map text to vectors whose cosine similarity tracks meaning.",
]


def _dequantized(packed: np.ndarray, scale: np.ndarray, x_scale: np.ndarray) -> np.ndarray:
    q = packed.view(np.int8)[:, : x_scale.size].astype(np.float64)
    return q * scale[:, None].astype(np.float64) * x_scale.astype(np.float64)


def test_quantize_q8_rounds_each_weight_to_within_half_a_step() -> None:
    weight = np.random.default_rng(1).standard_normal((7, 37)).astype(np.float32)
    weight[:, 3] *= 40  # an outlier column, which the equalisation absorbs
    packed, scale, x_scale = quantize_q8(weight)
    assert packed.shape == (7, 10) and packed.dtype == np.int32
    assert (packed.view(np.int8)[:, 37:] == 0).all()
    step = scale[:, None].astype(np.float64) * x_scale
    assert (np.abs(_dequantized(packed, scale, x_scale) - weight) <= step / 2 + 1e-7).all()


@pytest.mark.parametrize(
    ("m", "k", "n", "bias", "dtype"),
    [(5, 37, 3, True, "float32"), (70, 64, 45, False, "float32"), (3, 33, 9, True, "float16")],
)
def test_matmul_q8_equals_the_product_with_the_dequantized_weights(
    device: str, m: int, k: int, n: int, bias: bool, dtype: str
) -> None:
    rng = np.random.default_rng(m)
    packed, scale, x_scale = quantize_q8(rng.standard_normal((n, k)).astype(np.float32))
    x = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    dev = get_device(device)
    inputs = [None if a is None else dev.upload(a) for a in (x, packed, scale, x_scale, b)]
    out = dev.download(dev.run("matmul_q8", inputs, {}))
    expected = x.astype(np.float64) @ _dequantized(packed, scale, x_scale).T + (0 if b is None else b)
    assert out.dtype == np.dtype(dtype) and out.shape == (m, n)
    tolerance = 1e-3 if dtype == "float16" else 1e-5  # float16: one rounding of the result
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    assert not dev.stats.cpu_fallbacks


@pytest.fixture(scope="module")
def minilm_in(minilm_dir: Path) -> Callable[[str], BERT]:
    models: dict[str, BERT] = {}

    def load(dtype: str) -> BERT:
        if dtype not in models:
            models[dtype] = BERT.from_pretrained(minilm_dir, dtype=dtype)
        return models[dtype]

    return load


@pytest.mark.parametrize("dtype", ["q8", "fp16"])
def test_minilm_embeddings_stay_within_cosine_0999_of_float32(
    minilm_in: Callable[[str], BERT], dtype: str, record_property: Callable[[str, object], None]
) -> None:
    reference = minilm_in("fp32").embed(SENTENCES)
    ours = minilm_in(dtype).embed(SENTENCES)
    assert ours.dtype == np.float32
    similarity = cosine(ours, reference)
    record_property(f"cosine_{dtype}", float(similarity.min()))
    assert similarity.min() >= 0.999


def test_minilm_weight_bytes_per_precision(
    minilm_in: Callable[[str], BERT], record_property: Callable[[str, object], None]
) -> None:
    fp32, fp16, q8 = (minilm_in(d).weight_bytes for d in ("fp32", "fp16", "q8"))
    record_property("weight_bytes", {"fp32": fp32, "fp16": fp16, "q8": q8})
    assert fp16 * 2 == fp32
    # the 6 layers' linear weights (10.6 M of the 22.7 M values) shrink to a byte each, plus scales;
    # the embedding tables and norms stay float32
    linear = 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    assert fp32 - q8 == pytest.approx(3 * linear, rel=0.01)


def _tiny(name: str, folder: Path, device: str, dtype: str) -> Any:
    classes: dict[str, type[BERT | ViT | CLIP | Whisper]] = {
        "bert": BERT,
        "vit": ViT,
        "clip": CLIP,
        "whisper": Whisper,
    }
    return classes[name].from_pretrained(folder, device, dtype=dtype)


def _outputs(name: str, model: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    if name == "bert":
        out = model(rng.integers(0, 99, (2, 11)))
        return [out["last_hidden_state"].numpy(), out["pooler_output"].numpy()]
    if name == "vit":
        return [model(rng.standard_normal((2, 3, 32, 32)))["logits"].numpy()]
    if name == "clip":
        out = model(rng.integers(0, 5, (2, 7)), rng.standard_normal((2, 3, 32, 32)))
        return [out["text_embeds"].numpy(), out["image_embeds"].numpy()]
    return [model(rng.standard_normal((1, 80, 100)), rng.integers(0, 101, (1, 6)))["logits"].numpy()]


@pytest.mark.parametrize("dtype", ["q8", "fp16"])
@pytest.mark.parametrize("name", ["bert", "vit", "clip", "whisper"])
def test_tiny_models_stay_within_cosine_0999_of_float32(
    name: str, dtype: str, device: str, request: pytest.FixtureRequest
) -> None:
    folder = request.getfixturevalue(f"tiny_{name}_dir")
    reference = _outputs(name, _tiny(name, folder, device, "fp32"))
    model = _tiny(name, folder, device, dtype)
    assert model.weight_bytes < _tiny(name, folder, "cpu", "fp32").weight_bytes
    for ours, expected in zip(_outputs(name, model), reference, strict=True):
        rows = expected.reshape(-1, expected.shape[-1])
        assert cosine(ours.astype(np.float32).reshape(rows.shape), rows).min() >= 0.999
    assert not get_device(device).stats.cpu_fallbacks.get("matmul_q8")


@pytest.mark.slow
def test_whisper_tiny_en_in_q8_predicts_float32s_tokens_wherever_float32_is_not_a_near_tie(
    whisper_dir: Path, speech_wav: Path, record_property: Callable[[str, object], None]
) -> None:
    """Teacher-forced on float32's greedy transcript of the espeak clip. The transcripts themselves
    differ: float32 says "... dog with the turns be gentle text." and q8 "... dog with buttons be
    gentle text.", at a step where float32's two best logits are 0.07 apart (q8 moves logits by about
    0.1; float16 kept the transcript when measured, but numpy's float16 takes minutes for it, so that
    is not a test). Every step with a clear float32 choice must agree."""
    fp32, q8 = Whisper.from_pretrained(whisper_dir), Whisper.from_pretrained(whisper_dir, dtype="q8")
    features = fp32.log_mel_spectrogram(speech_wav)[None]
    assert fp32.settings is not None
    prompt = list(fp32.settings.prompt)
    ids = np.array([prompt + fp32.generate(features)[0]])
    reference = fp32(features, ids)["logits"].numpy()[0, len(prompt) - 1 :]
    ours = q8(features, ids)["logits"].numpy()[0, len(prompt) - 1 :]
    best_two = np.sort(reference, -1)[:, -2:]
    clear = best_two[:, 1] - best_two[:, 0] >= 0.25
    record_property("q8_logit_error", float(np.abs(ours - reference).max()))
    assert clear.sum() >= 0.75 * clear.size
    assert (ours.argmax(-1) == reference.argmax(-1))[clear].all()


class _NoF16Gpu:
    """A device whose adapter lacks shader-f16 (lavapipe has it; the headless Chromium's SwiftShader not)."""

    name = "gpu-without-f16"

    def info(self) -> DeviceInfo:
        return DeviceInfo(self.name, "gpu", "an adapter without float16", features=("subgroup",))


def test_fp16_on_an_adapter_without_shader_f16_says_to_use_q8_or_fp32() -> None:
    with pytest.raises(PrecisionUnsupportedError, match="shader-f16: use dtype='q8' or dtype='fp32'"):
        check_precision("fp16", _NoF16Gpu())  # type: ignore[arg-type]


def test_fp16_on_the_browser_device_needs_its_adapters_shader_f16(tiny_bert_dir: Path) -> None:
    """The browser runs float16 kernels where its adapter has shader-f16 (tests/browser/test_float16.py
    runs them); the headless Chromium's SwiftShader has not, and there fp16 says what to use instead."""
    with_f16 = BrowserProxyDevice(lambda content, buffers: None, summary={"features": ["shader-f16"]})
    assert check_precision("fp16", with_f16) == "fp16"
    without = BrowserProxyDevice(lambda content, buffers: None, summary={"features": ["subgroups"]})
    with pytest.raises(PrecisionUnsupportedError, match="shader-f16: use dtype='q8' or dtype='fp32'"):
        BERT.from_pretrained(tiny_bert_dir, without, dtype="fp16")


def test_unknown_dtype_lists_the_choices(tiny_bert_dir: Path) -> None:
    with pytest.raises(PrecisionUnsupportedError, match="'fp32', 'fp16', 'q8'; got 'int4'"):
        BERT.from_pretrained(tiny_bert_dir, dtype="int4")
