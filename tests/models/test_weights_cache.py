"""Loading a weights file onto a device that keeps weights across sessions (models/weights.py with
hal/browser_cache.py): a new kernel reads nothing the browser holds, sends every hash in one batch, reads
and sends only what the browser lacks, and a changed file is never served from its old hashes."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from accelerate_lab.hal import browser_cache
from accelerate_lab.hal.browser_errors import BrowserError
from accelerate_lab.hal.browser_protocol import encode_array
from accelerate_lab.models.layers import Linear
from accelerate_lab.models.precision import quantize_q8
from accelerate_lab.models.weights import Weights, open_safetensors
from tests.hal.fake_browser_cache import FakeBrowserCache

rng = np.random.default_rng(23)


@pytest.fixture
def file(tmp_path: Path) -> Path:
    """Where the test's weights are written."""
    return tmp_path / "model.safetensors"


@pytest.fixture
def browser() -> FakeBrowserCache:
    return FakeBrowserCache()


def write(file: Path) -> dict[str, np.ndarray]:
    """New random weights in ``file``, last changed a minute ago (recent files store no hashes)."""
    arrays = {
        "emb": rng.standard_normal((16, 8)).astype(np.float32),
        "proj.weight": rng.standard_normal((6, 8)).astype(np.float32),
        "proj.bias": rng.standard_normal(6).astype(np.float32),
    }
    temporary = file.with_suffix(".tmp")
    save_file(arrays, str(temporary))
    os.replace(temporary, file)
    changed = time.time_ns() - 60 * 10**9
    os.utime(file, ns=(changed, changed))
    return arrays


def load(file: Path, browser: FakeBrowserCache, precision: str = "fp32") -> tuple[list[Any], int]:
    """A new kernel (no hashes in memory) loading ``file`` into a new session of ``browser``; returns the
    tensors and the bytes the weights take."""
    browser_cache._hashes.clear()
    device = browser.connect()
    with Weights(open_safetensors(file), device=device, model_name="t", precision=precision) as w:
        loaded = [w.tensor("emb", (16, 8)), Linear.load(w, "proj", 6, 8)]
    device.flush()
    return loaded, w.nbytes


def expected(arrays: dict[str, np.ndarray]) -> list[bytes]:
    """What the browser stores for the fp32 load: the embedding, the transposed projection, the bias."""
    return [encode_array(a).tobytes() for a in (arrays["emb"], arrays["proj.weight"].T, arrays["proj.bias"])]


def test_a_new_kernel_reads_nothing_the_browser_holds_and_sends_all_hashes_in_one_batch(
    reads: list[str], file: Path, browser: FakeBrowserCache
) -> None:
    arrays = write(file)
    _, nbytes = load(file, browser)
    assert sorted(reads) == ["emb", "proj.bias", "proj.weight"] and browser.filled_bytes() == nbytes
    assert sorted(browser.held.values()) == sorted(expected(arrays))
    reads.clear()
    batches = len(browser.sent("batch"))
    loaded, again = load(file, browser)
    assert reads == [] and again == nbytes
    (batch,) = browser.sent("batch")[batches:]
    assert sum(c["op"] == "cached" for c in batch["commands"]) == 3
    assert len(browser.asked) == 1  # the first load's need only
    emb, proj = loaded
    assert (emb.shape, emb.dtype, proj.weight.shape, proj.bias.shape) == ((16, 8), "float32", (8, 6), (6,))


def test_only_what_the_browser_lacks_is_read_and_sent(
    reads: list[str], file: Path, browser: FakeBrowserCache
) -> None:
    arrays = write(file)
    load(file, browser)
    weight = encode_array(np.ascontiguousarray(arrays["proj.weight"].T)).tobytes()
    lost = next(h for h, data in browser.held.items() if data == weight)
    del browser.held[lost]  # evicted, or found damaged
    reads.clear()
    load(file, browser)
    assert reads == ["proj.weight"] and browser.asked[-1] == [lost]
    assert browser.held[lost] == weight
    assert browser.filled_bytes() == sum(a.nbytes for a in arrays.values()) + len(weight)


def test_q8_weights_are_quantized_only_where_the_browser_lacks_one_of_their_parts(
    reads: list[str], file: Path, browser: FakeBrowserCache
) -> None:
    arrays = write(file)
    load(file, browser, "q8")
    packed, scale, x_scale = quantize_q8(arrays["proj.weight"])
    assert {encode_array(a).tobytes() for a in (packed, scale)} <= set(browser.held.values())
    lost = next(h for h, data in browser.held.items() if data == encode_array(x_scale).tobytes())
    del browser.held[lost]
    reads.clear()
    load(file, browser, "q8")
    assert reads == ["proj.weight"] and browser.asked[-1] == [lost]
    reads.clear()
    load(file, browser, "q8")
    assert reads == []


def test_a_changed_file_is_never_served_from_its_old_hashes(
    reads: list[str], file: Path, browser: FakeBrowserCache
) -> None:
    old = write(file)
    load(file, browser)
    new = write(file)  # same names and shapes, new values
    reads.clear()
    load(file, browser)
    assert sorted(reads) == ["emb", "proj.bias", "proj.weight"]  # stale hashes unused: read and hashed
    assert set(expected(new)) <= set(browser.held.values())
    assert set(expected(old)) <= set(browser.held.values())  # the old entries stay until evicted


def test_a_file_changed_after_its_hashes_went_sends_nothing_and_fails_the_batch(
    reads: list[str], file: Path, browser: FakeBrowserCache
) -> None:
    write(file)
    load(file, browser)
    browser.held.clear()  # a new browser: it will ask for every weight
    browser_cache._hashes.clear()
    device = browser.connect()
    with Weights(open_safetensors(file), device=device, model_name="t") as w:
        kept = [w.tensor("emb", (16, 8)), Linear.load(w, "proj", 6, 8)]
    write(file)  # replaced before the browser asked for the bytes
    reads.clear()
    device.flush()
    assert reads == [] and browser.sent("fill")[-1]["hashes"] == [] and browser.held == {}
    with pytest.raises(BrowserError, match="never came"):
        device.upload(np.zeros(1, np.float32))
    del kept


def test_an_array_of_another_dtype_or_shape_than_indexed_is_hashed_not_served_from_the_index(
    reads: list[str], file: Path, browser: FakeBrowserCache
) -> None:
    write(file)
    made = [np.arange(24, dtype=np.float32).reshape(4, 6), np.arange(24, dtype=np.float32).reshape(6, 4) * 2]
    for array in (made[0], made[1], made[1].astype(np.int32)):
        browser_cache._hashes.clear()
        device = browser.connect()
        with Weights(open_safetensors(file), device=device, model_name="t") as w:
            t = w.upload(array, "made")
        device.flush()
        (command,) = [c for c in browser.sent("batch")[-1]["commands"] if c["op"] == "cached"]
        assert command["hash"] == hashlib.sha256(encode_array(array)).hexdigest()
        assert (t.shape, t.dtype) == (array.shape, str(array.dtype))
