"""The model demos in the kernel: each shows what the model computes (compared with the model's own
methods), records measured timings, reports loading progress from the weights' tqdm bar, lists
devices with the reason a device is unavailable, and shows errors. Tiny random ViT/CLIP, short speech."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from accelerate_lab.errors import DeviceError
from accelerate_lab.models import BERT, CLIP, ViT, Whisper, load_audio
from accelerate_lab.models.weights import open_safetensors
from accelerate_lab.widgets import BertDemo, ClipDemo, VitDemo, WhisperDemo
from tests.models.conftest import picture, speech_wav, tiny_clip_dir, tiny_vit_dir

__all__ = ["picture", "speech_wav", "tiny_clip_dir", "tiny_vit_dir"]


@pytest.fixture(scope="module")
def bert() -> BERT:
    return BERT.from_pretrained()


@pytest.fixture(scope="module")
def whisper() -> Whisper:
    return Whisper.from_pretrained()


@pytest.fixture
def bert_demo(bert: BERT) -> Iterator[BertDemo]:
    demo = BertDemo(model=bert)
    yield demo
    demo.close()


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_bert_demo_loads_with_progress_from_the_weights_bar(bert: BERT) -> None:
    demo = BertDemo(sentences=["A cat sleeps.", "A kitten naps.", "Stocks fell sharply."])
    try:
        demo.wait()
        tensors = len(open_safetensors(demo._folder).names())  # type: ignore[arg-type]
        assert demo.progress == {"done": tensors, "total": tensors}
        assert demo.loaded_on == "cpu" and demo.busy == "" and not demo.error
        assert [t["what"] for t in demo.timings] == ["load weights"] and demo.timings[0]["seconds"] > 0
        matrix = demo.compare()
    finally:
        demo.close()
    e = bert.embed(["A cat sleeps.", "A kitten naps.", "Stocks fell sharply."])
    np.testing.assert_allclose(matrix, e @ e.T, atol=1e-5)
    assert matrix[0, 1] > matrix[0, 2]  # the two animals are closer than the stocks


def test_bert_demo_shows_the_heatmap_and_timings(bert_demo: BertDemo) -> None:
    matrix = bert_demo.compare(["The GPU runs the kernel.", "A graphics card executes the shader."])
    assert bert_demo.compared == ["The GPU runs the kernel.", "A graphics card executes the shader."]
    np.testing.assert_allclose(np.array(bert_demo.similarity), matrix, atol=1e-4)
    (timing,) = bert_demo.timings
    assert timing["what"] == "embed 2 sentences" and timing["device"] == "cpu" and timing["seconds"] > 0
    assert bert_demo.status.startswith("embedded 2 sentences in ") and bert_demo.status.endswith(" on cpu")


def test_bert_demo_runs_what_the_widget_asks(bert_demo: BertDemo) -> None:
    bert_demo._on_msg(None, {"kind": "compare", "sentences": ["one", "two", " ", "three"]}, [])
    bert_demo.wait()
    assert bert_demo.compared == ["one", "two", "three"] and len(bert_demo.similarity) == 3


def test_device_picker_says_why_a_device_is_unavailable(bert_demo: BertDemo) -> None:
    rows = {row["name"]: row for row in bert_demo.devices}
    assert rows["cpu"]["available"] and rows["cpu"]["loaded"]
    assert "al.BrowserDevice()" in rows["browser:webgpu"]["reason"]
    assert not rows["browser:webnn"]["available"]
    # given a loaded model and no source, it cannot load elsewhere: the picker says so
    assert "pass source=" in rows["wgpu"]["reason"]


def test_browser_devices_need_the_awaitable_form(bert_demo: BertDemo) -> None:
    bert_demo.device = "browser:webgpu"
    bert_demo.wait()
    with pytest.raises(DeviceError, match=r"await demo.compare_async"):
        bert_demo.compare()


def test_a_failed_load_shows_in_the_widget() -> None:
    demo = BertDemo(device="no-such-device")
    try:
        demo.wait()
        assert "loading on no-such-device failed" in demo.error and "unknown device" in demo.error
        assert demo.busy == ""
    finally:
        demo.close()


def test_too_few_sentences_is_refused(bert_demo: BertDemo) -> None:
    with pytest.raises(ValueError, match="at least two sentences"):
        bert_demo.compare(["alone"])


async def test_compare_async_matches_compare(bert_demo: BertDemo) -> None:
    sentences = ["a red apple", "a green apple"]
    np.testing.assert_allclose(await bert_demo.compare_async(sentences), bert_demo.compare(sentences))


def test_vit_demo_shows_the_top_five(tiny_vit_dir: Path, picture: np.ndarray) -> None:
    demo = VitDemo(tiny_vit_dir)
    try:
        ranked = demo.classify(picture)
        assert ranked == ViT.from_pretrained(tiny_vit_dir).classify(picture, top_k=5)
        assert [p["label"] for p in demo.predictions] == [label for label, _ in ranked]
        assert Image.open(io.BytesIO(demo.image)).size == (70, 50)  # the thumbnail keeps the aspect
        assert [t["what"] for t in demo.timings] == ["load weights", "classify 1 image"]
        # a file chosen in the widget arrives as bytes, and is classified at once
        demo._on_msg(None, {"kind": "image", "name": "flipped.png"}, [_png(picture[::-1].copy())])
        demo.wait()
        assert demo.image_name == "flipped.png" and len(demo.timings) == 3
        assert demo.predictions[0]["label"] == ViT.from_pretrained(tiny_vit_dir).classify(picture[::-1])[0][0]
    finally:
        demo.close()


def test_vit_demo_says_when_a_file_is_not_an_image(tiny_vit_dir: Path) -> None:
    demo = VitDemo(tiny_vit_dir)
    try:
        demo._on_msg(None, {"kind": "image", "name": "notes.txt"}, [b"not an image"])
        demo.wait()
        assert "notes.txt is not an image" in demo.error
    finally:
        demo.close()


def test_clip_demo_scores_the_labels(tiny_clip_dir: Path, picture: np.ndarray) -> None:
    demo = ClipDemo(tiny_clip_dir, labels=["cat", "dog", "tree"])
    try:
        ranked = demo.classify(picture)
        assert ranked == CLIP.from_pretrained(tiny_clip_dir).zero_shot(picture, ["cat", "dog", "tree"])
        assert sum(p["probability"] for p in demo.predictions) == pytest.approx(1.0, abs=1e-5)
        demo._on_msg(
            None, {"kind": "classify", "labels": ["cat", "dog"], "template": "a diagram of a {}"}, []
        )
        demo.wait()
        assert demo.labels == ["cat", "dog"] and demo.template == "a diagram of a {}"
        reference = CLIP.from_pretrained(tiny_clip_dir).zero_shot(
            picture, ["cat", "dog"], "a diagram of a {}"
        )
        assert [p["label"] for p in demo.predictions] == [label for label, _ in reference]
        assert [p["probability"] for p in demo.predictions] == pytest.approx(
            [probability for _, probability in reference], abs=1e-6
        )
        with pytest.raises(ValueError, match="needs a"):
            demo.template = "no place for the label"
            demo.classify()
    finally:
        demo.close()


def test_whisper_demo_transcribes_a_file_and_the_microphone(whisper: Whisper, speech_wav: Path) -> None:
    demo = WhisperDemo(model=whisper)
    try:
        text = demo.transcribe(speech_wav)
        assert demo.transcript == text and "lazy dog" in text.lower()
        assert demo.audio_name == "speech.wav" and demo.audio_seconds > 3
        assert demo.timings[-1]["what"].startswith("transcribe ") and "real time" in demo.status
        # the microphone: a buffer of 16 kHz float32 while recording starts a live pass; stop: the
        # final pass transcribes all that was heard
        samples = load_audio(speech_wav)
        demo._on_msg(None, {"kind": "mic", "state": "start"}, [])
        demo._on_msg(None, {"kind": "pcm"}, [samples.astype("<f4").tobytes()])
        demo.wait()
        assert demo.recording and "lazy" in demo.transcript  # the live pass's text, while recording
        demo._on_msg(None, {"kind": "mic", "state": "stop"}, [])
        demo.wait()
        assert demo.transcript == text and demo.audio_name == "microphone" and not demo.recording
        assert any(t["what"] == "transcribe (live)" for t in demo.timings)
    finally:
        demo.close()
