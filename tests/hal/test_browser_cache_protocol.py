"""The kernel's side of the weight cache protocol (hal/browser_device.py): deferred uploads go as hashes
only, all in one batch, and their bytes are made only when the browser asks, in fills of bounded size."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest

from accelerate_lab.hal.browser_cache import cacheable_uploads
from accelerate_lab.hal.browser_errors import BrowserError
from accelerate_lab.hal.browser_protocol import encode_array
from tests.hal.fake_browser_cache import FakeBrowserCache

rng = np.random.default_rng(17)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(encode_array(array)).hexdigest()


def deferred(browser: FakeBrowserCache, arrays: list[np.ndarray]) -> list[int]:
    """Upload ``arrays`` deferred; returns how many times each one's bytes were made (the buffers are
    kept until the batch has gone)."""
    assert browser.device is not None
    made = [0] * len(arrays)

    def maker(i: int) -> Callable[[], np.ndarray]:
        def make() -> np.ndarray:
            made[i] += 1
            return arrays[i]

        return make

    buffers = [
        browser.device.upload_deferred(array.shape, array.dtype, digest(array), maker(i))
        for i, array in enumerate(arrays)
    ]
    browser.device.flush()
    del buffers
    return made


def test_hashes_go_in_one_batch_and_only_the_missing_bytes_are_made_and_sent() -> None:
    arrays = [rng.standard_normal((64, 32)).astype(np.float32) for _ in range(6)]
    browser = FakeBrowserCache(held={digest(a): encode_array(a).tobytes() for a in arrays[::2]})
    browser.connect(max_bytes=4096)  # smaller than the arrays together: deferred bytes do not count
    made = deferred(browser, arrays)
    (batch,) = browser.sent("batch")
    assert [c["op"] for c in batch["commands"]] == ["cached"] * 6
    assert [sizes for content, sizes in browser.messages if content["kind"] == "batch"] == [[]]
    assert made == [0, 1, 0, 1, 0, 1]
    assert browser.asked == [[digest(a) for a in arrays[1::2]]]  # one need, for the missing ones only
    assert set(browser.held) == {digest(a) for a in arrays}
    assert browser.filled_bytes() == 3 * arrays[0].nbytes
    assert browser.device is not None and browser.device.cache_sent_bytes == 3 * arrays[0].nbytes


def test_a_cached_load_sends_no_fill_and_makes_nothing() -> None:
    arrays: list[np.ndarray] = [rng.standard_normal(100).astype(np.float32)]
    arrays.append(rng.integers(0, 9, (3, 5)).astype(np.uint8))
    browser = FakeBrowserCache()
    browser.connect()
    assert deferred(browser, arrays) == [1, 1]  # a first load: all asked for
    browser.connect()  # a new session in the same browser
    assert deferred(browser, arrays) == [0, 0]
    assert len(browser.sent("batch")) == 2 and len(browser.sent("fill")) == 1  # the first load's fill only
    # uint8 is widened to 32 bits on the GPU: its bytes and hash are of what the page stores
    assert browser.held[digest(arrays[1])] == arrays[1].astype(np.uint32).tobytes()


def test_fills_come_in_parts_of_at_most_max_bytes_the_last_without_more() -> None:
    arrays = [rng.standard_normal(250).astype(np.float32) for _ in range(5)]  # 1000 bytes each
    browser = FakeBrowserCache()
    browser.connect(max_bytes=2000)
    deferred(browser, arrays)
    fills = [(c["hashes"], c["more"], sizes) for c, sizes in browser.messages if c["kind"] == "fill"]
    assert [len(hashes) for hashes, _, _ in fills] == [2, 2, 1]
    assert [more for _, more, _ in fills] == [True, True, False]
    assert all(sum(sizes) <= 2000 for _, _, sizes in fills)
    assert [h for hashes, _, _ in fills for h in hashes] == [digest(a) for a in arrays]
    big = rng.standard_normal(1000).astype(np.float32)  # larger than max_bytes: a fill of its own
    deferred(browser, [arrays[0].copy() + 1, big])
    assert [c["hashes"] for c in browser.sent("fill")[-2:]] == [[digest(arrays[0] + 1)], [digest(big)]]


def test_eager_cacheable_uploads_still_count_toward_the_batch_size() -> None:
    browser = FakeBrowserCache()
    device = browser.connect(max_bytes=2000)
    with cacheable_uploads():
        kept = [device.upload(rng.standard_normal(250).astype(np.float32)) for _ in range(4)]  # 1000 B each
    device.flush()
    assert [len(b["commands"]) for b in browser.sent("batch")] == [2, 2] and len(kept) == 4


@pytest.mark.parametrize("fault", ["raises", "wrong shape", "wrong dtype"])
def test_bytes_that_cannot_be_made_as_announced_are_never_sent(fault: str) -> None:
    good, bad = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    browser = FakeBrowserCache()
    device = browser.connect()

    def make() -> np.ndarray:
        if fault == "raises":
            raise OSError("the weights file changed")
        return bad.reshape(2, 4) if fault == "wrong shape" else bad.astype(np.float64)

    device.upload_deferred(bad.shape, bad.dtype, digest(bad), make)
    device.upload_deferred(good.shape, good.dtype, digest(good), lambda: good)
    device.flush()
    assert browser.sent("fill")[-1] == {"kind": "fill", "seq": 1, "hashes": [digest(good)], "more": False}
    assert digest(bad) not in browser.held
    with pytest.raises(BrowserError, match="never came"):  # the browser failed that batch
        device.upload(good)
