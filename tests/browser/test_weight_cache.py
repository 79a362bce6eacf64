"""The weight cache of the browser device (widget/src/weight_cache.ts, hal/browser_cache.py) in headless
Chromium: weights cross once per browser, survive a page reload, a corrupt entry is sent again, least
recently used entries go past the size cap, and the cache can be emptied (message and view button)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal.browser_cache import cacheable_uploads
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from tests.browser.harness import PageTransport, connect_logged, host

pytestmark = pytest.mark.browser

rng = np.random.default_rng(11)

# reads and writes the page's IndexedDB directly, as a test (or a failing disk) would
ENTRIES = """async () => {
  const db = await new Promise((ok, no) => {
    const r = indexedDB.open("accelerate_lab-weights", 1); r.onsuccess = () => ok(r.result); r.onerror = no;
  });
  const r = db.transaction("meta").objectStore("meta").getAllKeys();
  const keys = await new Promise((ok) => (r.onsuccess = () => ok(r.result)));
  db.close();
  return keys;
}"""
DAMAGE = """async ([hash, keep]) => {
  const db = await new Promise((ok, no) => {
    const r = indexedDB.open("accelerate_lab-weights", 1); r.onsuccess = () => ok(r.result); r.onerror = no;
  });
  const read = db.transaction("data").objectStore("data").get(hash);
  const data = await (await new Promise((ok) => (read.onsuccess = () => ok(read.result)))).arrayBuffer();
  const bytes = new Uint8Array(data.slice(0, keep));
  if (keep === data.byteLength) bytes[7] ^= 0x40;  // same length, one bit flipped
  const write = db.transaction("data", "readwrite");
  write.objectStore("data").put(new Blob([bytes]), hash);
  await new Promise((ok) => (write.oncomplete = ok));
  db.close();
}"""


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def reload(page: Any) -> None:
    """A new session in the page: no buffers, no models; the cache stays."""
    page.reload()
    page.wait_for_function("window.pageReady === true", timeout=30_000)


@pytest.fixture
def fresh(page: Any) -> Iterator[Any]:
    """The page, reloaded, with the cache emptied and ``browser:webgpu`` unregistered after the test."""
    reload(page)
    yield page
    al.hal.unregister_device("browser:webgpu")
    reload(page)
    page.evaluate(
        "() => new Promise((ok) => { const r = indexedDB.deleteDatabase('accelerate_lab-weights'); "
        "r.onsuccess = r.onerror = r.onblocked = ok; })"
    )


def session(page: Any, render: bool = False) -> tuple[BrowserProxyDevice, PageTransport]:
    """A new model in the page and ``browser:webgpu`` (registered) talking to it."""
    device, transport, state = connect_logged(page, render=render)
    assert state["status"] == "ready", state.get("message")
    al.hal.register_device(device.name, lambda: device, replace=True)
    return device, transport


def sent_since(transport: PageTransport, start: int) -> tuple[int, int]:
    """Bytes that crossed in batches and in fills since log entry ``start``."""
    entries = transport.log[start:]
    return (
        sum(e.sent_bytes for e in entries if e.kind == "batch"),
        sum(e.sent_bytes for e in entries if e.kind == "fill"),
    )


def load(
    device: BrowserProxyDevice, transport: PageTransport, *arrays: np.ndarray
) -> tuple[list[al.Tensor], int]:
    """``arrays`` as weights on ``device``; returns them and the bytes the page asked for."""
    device.flush()
    start, counted = len(transport.log), device.cache_sent_bytes
    with cacheable_uploads():
        tensors = [al.tensor(a, device=device.name) for a in arrays]
    device.flush()
    batch_bytes, fill_bytes = sent_since(transport, start)
    assert batch_bytes == 0  # weights never ride in the batch itself
    assert device.cache_sent_bytes - counted == fill_bytes
    return tensors, fill_bytes


def test_weights_cross_once_and_give_the_same_results_after_a_reload(fresh: Any) -> None:
    w = rng.standard_normal((64, 48)).astype(np.float32)
    b = rng.standard_normal(48).astype(np.float32)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    results = []
    fills = []
    for _ in range(2):
        device, transport = session(fresh)
        (wt, bt), filled = load(device, transport, w, b)
        results.append(host(al.tensor(x, device=device.name) @ wt + bt))
        fills.append(filled)
        reload(fresh)
    assert fills == [w.nbytes + b.nbytes, 0]
    np.testing.assert_allclose(results[0], x @ w + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(results[1], results[0])
    assert sorted(fresh.evaluate(ENTRIES)) == sorted([digest(w), digest(b)])


def test_content_decides_a_hit_not_the_array_object(fresh: Any) -> None:
    device, transport = session(fresh)
    w = rng.standard_normal((8, 8)).astype(np.float32)
    first, filled = load(device, transport, w)
    again, refilled = load(device, transport, w.copy())
    assert (filled, refilled) == (w.nbytes, 0)
    np.testing.assert_array_equal(host(again[0]), w)
    # widened uint8 is what the page stores: its hash is of the 32-bit words
    small = rng.integers(0, 255, 40).astype(np.uint8)
    (t,), filled = load(device, transport, small)
    assert filled == 4 * small.size
    np.testing.assert_array_equal(host(t), small)
    del first


@pytest.mark.parametrize("keep", ["all", "half"], ids=["bit-flipped", "truncated"])
def test_a_corrupt_entry_is_sent_again_and_never_used(fresh: Any, keep: str) -> None:
    w = rng.standard_normal((32, 32)).astype(np.float32)
    other = rng.standard_normal(100).astype(np.float32)
    device, transport = session(fresh)
    load(device, transport, w, other)
    fresh.evaluate(DAMAGE, [digest(w), w.nbytes if keep == "all" else w.nbytes // 2])

    reload(fresh)
    device, transport = session(fresh)  # a new session reads the damaged entry
    (wt, ot), filled = load(device, transport, w, other)
    assert filled == w.nbytes  # only the damaged weight crossed again
    np.testing.assert_array_equal(host(wt), w)
    np.testing.assert_array_equal(host(ot), other)
    assert load(device, transport, w)[1] == 0  # and it is whole in the cache again


def test_least_recently_used_weights_go_past_the_size_cap(fresh: Any) -> None:
    a, b, c = (rng.standard_normal(1000).astype(np.float32) for _ in range(3))  # 4000 bytes each
    device, transport = session(fresh)
    fresh.evaluate("() => window.setState(0, 'cache_limit', 9000)")  # two of them fit
    load(device, transport, a, b)
    assert load(device, transport, a)[1] == 0  # a is now more recent than b
    load(device, transport, c)
    assert sorted(fresh.evaluate(ENTRIES)) == sorted([digest(a), digest(c)])
    state = fresh.evaluate("() => window.state(0).cache")
    assert (state["entries"], state["bytes"], state["limit"]) == (2, 8000, 9000)
    assert load(device, transport, b)[1] == b.nbytes  # b was evicted: it crosses again
    # a weight over the cap crosses every time and is never stored
    big = rng.standard_normal(3000).astype(np.float32)
    assert load(device, transport, big)[1] == big.nbytes
    assert digest(big) not in fresh.evaluate(ENTRIES)


def test_clear_empties_the_cache_by_message_and_by_the_view_button(fresh: Any) -> None:
    w = rng.standard_normal(256).astype(np.float32)
    device, transport = session(fresh, render=True)  # model 0, with a view
    for clear in ("message", "button"):
        assert load(device, transport, w)[1] == w.nbytes
        fresh.wait_for_function("() => window.state(0).cache.entries === 1")
        if clear == "message":  # what BrowserDevice.clear_cache() sends
            transport({"kind": "clear-cache"}, [])
        else:
            assert "1 weights" in fresh.inner_text("#view")
            fresh.click("#view button.al-bd-clear")
        fresh.wait_for_function("() => window.state(0).cache.entries === 0")
        assert fresh.evaluate(ENTRIES) == []
        assert "0.0 KiB in 0 weights" in fresh.inner_text("#view")


def test_a_weights_file_is_hashed_and_read_once_across_kernels_and_again_when_it_changes(
    fresh: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[str]
) -> None:
    from safetensors.numpy import save_file

    from accelerate_lab.hal import browser_cache
    from accelerate_lab.models.weights import Weights, open_safetensors

    hashed: list[int] = []  # the lengths of what SHA-256 was asked to hash
    sha256 = hashlib.sha256

    def counted(data: bytes | memoryview = b"") -> Any:
        hashed.append(len(data))
        return sha256(data)

    monkeypatch.setattr(browser_cache, "hashlib", SimpleNamespace(sha256=counted))
    file = tmp_path / "model.safetensors"

    def load_file(damage: str | None = None) -> tuple[list[np.ndarray], int, list[str]]:
        """A new kernel (nothing remembered in memory) loading ``file`` onto a reloaded page (after
        flipping a bit of the cached entry ``damage``): the values, the bytes sent, the batches' kinds."""
        browser_cache._hashes.clear()
        reload(fresh)
        if damage is not None:
            fresh.evaluate(DAMAGE, [damage, 16 * 8 * 4])
        device, transport = session(fresh)
        start, logged = device.cache_sent_bytes, len(transport.log)
        hashed.clear()
        reads.clear()
        with Weights(open_safetensors(file), device=device.name, model_name="t") as w:
            tensors = [w.tensor(name, (16, 8)) for name in ("a", "b")]
        device.flush()
        kinds = [entry.kind for entry in transport.log[logged:]]
        return [host(t) for t in tensors], device.cache_sent_bytes - start, kinds

    for _ in range(2):
        arrays = {name: rng.standard_normal((16, 8)).astype(np.float32) for name in ("a", "b")}
        save_file(arrays, str(file))
        changed = time.time_ns() - 60 * 10**9  # a minute ago: recent changes store no hashes
        os.utime(file, ns=(changed, changed))
        first, filled, _ = load_file()
        # a new file (or a changed one: its old hashes are stale): read, hashed and sent
        assert hashed.count(16 * 8 * 4) == 2 and sorted(reads) == ["a", "b"] and filled == 2 * 16 * 8 * 4
        again, refilled, kinds = load_file()
        # a new kernel: hashes from the index, nothing read, every hash in one batch, nothing sent
        assert hashed.count(16 * 8 * 4) == 0 and reads == [] and refilled == 0 and kinds == ["batch"]
        repaired, resent, kinds = load_file(damage=digest(arrays["b"]))
        # a damaged entry: only its tensor is read (not hashed) and sent
        assert hashed.count(16 * 8 * 4) == 0 and reads == ["b"] and resent == 16 * 8 * 4
        assert sorted(kinds) == ["batch", "fill"]  # one batch, one fill (logged first: it is nested)
        for got in (first, again, repaired):
            np.testing.assert_array_equal(got[0], arrays["a"])
            np.testing.assert_array_equal(got[1], arrays["b"])


def test_missing_weights_come_in_several_fills_each_upload_as_its_bytes_arrive(fresh: Any) -> None:
    arrays = [rng.standard_normal(250).astype(np.float32) for _ in range(5)]  # 1000 bytes each
    made: list[int] = []  # the arrays whose bytes were made

    def maker(i: int) -> Callable[[], np.ndarray]:
        def make() -> np.ndarray:
            made.append(i)
            return arrays[i]

        return make

    for attempt in ("first", "cached"):
        device, transport = session(fresh)
        device._max_bytes = 2500  # fills of up to two of these
        made.clear()
        # deferred, as a weights file's indexed tensors are: their bytes are made only when asked for
        buffers = [
            device.upload_deferred(a.shape, a.dtype, digest(a), maker(i)) for i, a in enumerate(arrays)
        ]
        device.flush()
        batches, fills = (
            [entry for entry in transport.log if entry.kind == kind] for kind in ("batch", "fill")
        )
        assert len(batches) == 1 and sum(c["op"] == "cached" for c in batches[0].commands) == 5
        for buffer, a in zip(buffers, arrays, strict=True):
            np.testing.assert_array_equal(host(al.Tensor._wrap(buffer, device)), a)
        if attempt == "first":
            assert [entry.sent_bytes for entry in fills] == [2000, 2000, 1000] and made == [0, 1, 2, 3, 4]
        else:  # every part was stored
            assert fills == [] and made == []
        reload(fresh)


def test_float16_weights_are_cached_and_indexed_apart_from_float32_ones(
    fresh: Any, tmp_path: Path, reads: list[str]
) -> None:
    """A weights file loaded at precision "fp16" and "fp32": each precision's bytes cross once, as its
    own entries (the index keys hashes by precision), and read back as the dtype it was loaded in."""
    from safetensors.numpy import save_file

    from accelerate_lab.hal import browser_cache
    from accelerate_lab.models.weights import Weights, open_safetensors

    arrays = {name: rng.standard_normal((16, 8)).astype(np.float32) for name in ("a", "b")}
    file = tmp_path / "model.safetensors"
    save_file(arrays, str(file))
    changed = time.time_ns() - 60 * 10**9  # a minute ago: recent changes store no hashes
    os.utime(file, ns=(changed, changed))

    def load_file(precision: str) -> tuple[list[np.ndarray], int, list[str]]:
        """A new kernel loading ``file`` at ``precision`` onto a reloaded page: the values, the bytes
        sent and the tensors read from the file."""
        browser_cache._hashes.clear()
        reload(fresh)
        device, _ = session(fresh)
        # loading only uploads (no kernel runs), so fp16 may load although this page lacks shader-f16
        device._summary["features"] = [*device._summary.get("features", ()), "shader-f16"]
        start = device.cache_sent_bytes
        reads.clear()
        with Weights(open_safetensors(file), device=device.name, model_name="t", precision=precision) as w:
            tensors = [w.tensor(name, (16, 8)) for name in ("a", "b")]
        device.flush()
        return [host(t) for t in tensors], device.cache_sent_bytes - start, sorted(reads)

    expected: dict[str, list[np.ndarray]] = {
        "fp16": [arrays[n].astype(np.float16) for n in ("a", "b")],
        "fp32": [arrays[n] for n in ("a", "b")],
    }
    for precision, itemsize in (("fp16", 2), ("fp32", 4)):  # the float32 ones are not the float16 ones
        got, sent, names = load_file(precision)
        assert (sent, names) == (2 * 16 * 8 * itemsize, ["a", "b"])
        for ours, want in zip(got, expected[precision], strict=True):
            assert ours.dtype == want.dtype
            np.testing.assert_array_equal(ours, want)
    for precision in ("fp16", "fp32"):  # again: every hash from the index, nothing read, nothing sent
        got, sent, names = load_file(precision)
        assert (sent, names) == (0, [])
        for ours, want in zip(got, expected[precision], strict=True):
            assert ours.dtype == want.dtype
            np.testing.assert_array_equal(ours, want)
    assert len(fresh.evaluate(ENTRIES)) == 4
