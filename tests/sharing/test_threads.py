"""Eight threads acquiring, releasing, viewing, registering and optimising on one manager at once."""

from __future__ import annotations

import threading

import numpy as np

import accelerate_lab as al
from accelerate_lab.sharing._ledger import MIB

THREADS = 8
STEPS = 300
BASE = 4096  # float32 elements per base tensor


def test_eight_threads_keep_counts_budget_and_bytes_consistent() -> None:
    mgr = al.TensorSharingManager(max_memory_mb=1)
    bases = []
    for k in range(4):
        base = mgr.register_shared_tensor(
            f"base{k}", data=np.arange(BASE, dtype=np.float32) + k, producer_model="loader"
        )
        base.pin()
        bases.append(base)
    peak = [0]

    def watch(event: al.SharingEvent) -> None:  # runs under the manager's lock, after each change
        peak[0] = max(peak[0], mgr.memory_stats("cpu")["allocated_bytes.all.current"])

    mgr.subscribe(watch)
    held = [[0] * len(bases) for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(i: int) -> None:
        model, rng = f"m{i}", np.random.default_rng(i)
        start.wait(timeout=30)
        for step in range(STEPS):
            k = int(rng.integers(len(bases)))
            op = int(rng.integers(5))
            if op == 0:
                bases[k].acquire(model)
                held[i][k] += 1
            elif op == 1:
                assert bases[k].release(model) == (held[i][k] > 0)
                held[i][k] = max(0, held[i][k] - 1)
            elif op == 2:
                offset = int(rng.integers(BASE - 8))
                with mgr.create_tensor_view(
                    f"base{k}", f"{model}-{step}", offset, 8, model_name=model
                ) as view:
                    np.testing.assert_array_equal(view.get_data().numpy(), np.arange(offset, offset + 8) + k)
            elif op == 3:
                mgr.register_shared_tensor(f"{model}-scratch-{step}", [64 * 1024], dtype="uint8")
            elif step % 60 == 0:
                mgr.optimize_memory_usage()

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads) and errors == []

    for k, base in enumerate(bases):
        expected = {f"m{i}": held[i][k] for i in range(THREADS) if held[i][k]}
        assert base.references == {"loader": 1, **expected}
        assert base.views == {}
    assert peak[0] <= MIB
    storages = {id(t._storage): t.get_memory_usage() for t in mgr._pool.tensors.values()}
    assert mgr.memory_stats()["allocated_bytes.all.current"] == sum(storages.values())
    assert len(mgr.events("evict")) > 0
