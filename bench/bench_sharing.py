"""The sharing layer against the least its work could cost, in the same run.

Prints one table: case, ours, baseline, unit, ratio (ours / baseline), and the machine.
  - acquire+release pairs/s (goal >= 300,000) vs a dict of counts under a lock;
  - register+free of small tensors per second vs allocating the same tensors without sharing;
  - optimize_memory_usage on 100,000 tensors, wall and CPU ms (goal < 200) vs hashing their bytes into
    a dict;
  - a multi-model notebook (MiniLM twice, CLIP vision in LLaVA, SmolLM2's tied embeddings, Whisper's
    encoder output for CLAP): MiB held with sharing vs every model holding its own copies.

    python bench/bench_sharing.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable

import numpy as np

import accelerate_lab as al

MIB = 1024 * 1024


def medians(run: Callable[[], tuple[float, ...]], repeats: int) -> tuple[float, ...]:
    """Median of each timing (ours, baseline, ...) over ``repeats`` runs (each run times all)."""
    return tuple(statistics.median(column) for column in zip(*(run() for _ in range(repeats)), strict=True))


def pairs(n: int) -> tuple[float, float]:
    mgr = al.TensorSharingManager(max_memory_mb=64)
    st = mgr.register_shared_tensor("emb", [768], producer_model="bert")
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def ours() -> float:
        start = time.perf_counter()
        for _ in range(n):
            st.acquire("clip")
            st.release("clip")
        return time.perf_counter() - start

    def baseline() -> float:
        start = time.perf_counter()
        for _ in range(n):
            with lock:
                counts["clip"] = counts.get("clip", 0) + 1
            with lock:
                counts["clip"] -= 1
        return time.perf_counter() - start

    return ours(), baseline()


def register_free(n: int) -> tuple[float, float]:
    def ours() -> float:
        mgr = al.TensorSharingManager(max_memory_mb=64)
        start = time.perf_counter()
        for i in range(n):
            mgr.register_shared_tensor(f"t{i}", [16])
        for i in range(n):
            mgr.free_shared_tensor(f"t{i}")
        return time.perf_counter() - start

    def baseline() -> float:
        start = time.perf_counter()
        kept = {f"t{i}": al.zeros([16]) for i in range(n)}
        for i in range(n):
            del kept[f"t{i}"]
        return time.perf_counter() - start

    return ours(), baseline()


def optimize(n: int) -> tuple[float, float, float, float]:
    """Half the tensors unreferenced (freed), the held half in pairs of identical contents (merged).

    Wall and CPU seconds (``process_time``: what this process used on a shared, loaded machine) of
    ours and of the baseline.
    """
    contents = [np.full(16, i % (n // 2), np.float32) for i in range(n)]
    mgr = al.TensorSharingManager()
    for i, data in enumerate(contents):
        mgr.register_shared_tensor(f"t{i}", data=data, producer_model=None if i % 2 else "m")
    gc.collect()  # the previous repeat's 100,000 tensors (cyclic garbage) are not this call's cost
    start, cpu = time.perf_counter(), time.process_time()
    result = mgr.optimize_memory_usage()
    ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert len(result.freed_tensors) == n // 2 and len(result.merged_tensors) == n // 4
    start, cpu = time.perf_counter(), time.process_time()
    seen: dict[bytes, int] = {}
    for i, data in enumerate(contents):
        seen.setdefault(data.tobytes(), i)
    return ours, time.perf_counter() - start, ours_cpu, time.process_time() - cpu


def scenario(rng: np.random.Generator) -> tuple[int, int]:
    """Bytes held with sharing (after optimize_memory_usage) and without (each model its own copies)."""

    def weights(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    mgr = al.TensorSharingManager(max_memory_mb=2048)
    minilm = {"word": weights(30522, 384), "position": weights(512, 384), "token_type": weights(2, 384)}
    for model in ("minilm-search", "minilm-rerank"):  # two pipelines load the same checkpoint
        for part, array in minilm.items():
            mgr.register_shared_tensor(f"{model}.{part}", data=array.copy(), producer_model=model)
    for part, array in {"patch": weights(768, 3, 32, 32), "position": weights(50, 768)}.items():
        mgr.register_shared_tensor(f"clip-vit.{part}", data=array, producer_model="clip-vit")
        mgr.share_tensor_between_models(f"clip-vit.{part}", "clip-vit", ["llava"])  # LLaVA's vision tower
    embed = weights(49152, 576)  # SmolLM2-135M: input and output embeddings tied, stored twice
    mgr.register_shared_tensor("smollm2.embed_tokens", data=embed, producer_model="llama-smollm2")
    mgr.register_shared_tensor("smollm2.lm_head", data=embed.copy(), producer_model="llama-smollm2")
    audio = weights(1500, 384)  # Whisper tiny's encoder output, also read by a CLAP-style classifier
    mgr.register_shared_tensor(
        "whisper.encoder_out", data=audio, producer_model="whisper", consumer_models=["clap"]
    )
    mgr.optimize_memory_usage()
    stats = mgr.get_stats()
    return stats.current_bytes, stats.unshared_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat (a smoke run)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    n_pairs, n_tensors, n_optimize = (20_000, 2_000, 10_000) if args.quick else (200_000, 20_000, 100_000)

    rows = []
    ours, base = medians(lambda: pairs(n_pairs), repeats)
    rows.append(("acquire+release (goal >= 300,000)", n_pairs / ours, n_pairs / base, "pairs/s"))
    ours, base = medians(lambda: register_free(n_tensors), repeats)
    rows.append(("register+free, 16 float32", n_tensors / ours, n_tensors / base, "tensors/s"))
    ours, base, ours_cpu, base_cpu = medians(lambda: optimize(n_optimize), max(1, repeats // 2))
    rows.append((f"optimize_memory_usage, {n_optimize:,} tensors (goal < 200)", ours * 1e3, base * 1e3, "ms"))
    rows.append((f"optimize_memory_usage, {n_optimize:,} tensors, CPU", ours_cpu * 1e3, base_cpu * 1e3, "ms"))
    if not args.quick:
        held, unshared = scenario(np.random.default_rng(0))
        rows.append(("multi-model notebook, memory held", held / MIB, unshared / MIB, "MiB"))

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average {load}"
    print(f"{machine}, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"{'case':<56}{'ours':>14}{'baseline':>14}  {'unit':<10}{'ratio':>7}")
    for case, ours_value, base_value, unit in rows:
        print(
            f"{case:<56}{ours_value:>14,.1f}{base_value:>14,.1f}  {unit:<10}{ours_value / base_value:>7.2f}"
        )


if __name__ == "__main__":
    main()
