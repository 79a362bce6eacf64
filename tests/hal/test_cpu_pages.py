"""Long-lived cpu arrays in 2 MiB pages: equal copies, aligned, advised, unmapped with their last view."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np
import pytest

from accelerate_lab.hal.cpu_pages import HUGE_PAGE, MIN_BYTES, huge_page_copy

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
thp_on_request = pytest.mark.skipif(
    sys.platform != "linux" or not THP.exists() or "[never]" in THP.read_text(),
    reason="the kernel gives no transparent huge pages on request",
)


def mapping_of(address: int) -> dict[str, str] | None:
    """The /proc/self/smaps entry of the mapping holding ``address`` (its fields by name), or None."""
    entry: dict[str, str] | None = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(x, 16) for x in head.split("-"))
            if entry is not None:
                return entry
            entry = {"range": head} if start <= address < end else None
        elif entry is not None and ":" in line:
            key, value = line.split(":", 1)
            entry[key] = value.strip()
    return entry


@pytest.mark.parametrize("shape", [(1000, 600), (384, 1536), (7, 5), (4096, 1152)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8])
def test_the_copy_is_equal_contiguous_writable_and_private(shape: tuple[int, int], dtype: type) -> None:
    source: np.ndarray = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    copy = huge_page_copy(source)
    assert copy.dtype == source.dtype and copy.shape == source.shape
    assert copy.flags.c_contiguous and copy.flags.writeable
    np.testing.assert_array_equal(copy, source)
    assert not np.shares_memory(copy, source)
    copy[0, 0] += 1
    assert copy[0, 0] != source[0, 0]


def test_a_strided_source_is_copied_in_row_major_order() -> None:
    source = np.random.default_rng(1).standard_normal((1536, 384), dtype=np.float32)
    copy = huge_page_copy(source.T)  # how a model's weight is held: (in, out) from PyTorch's (out, in)
    assert copy.flags.c_contiguous
    np.testing.assert_array_equal(copy, source.T)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/smaps")
def test_a_large_copy_starts_on_a_huge_page_and_a_small_one_is_ordinary() -> None:
    large = huge_page_copy(np.ones(MIN_BYTES // 4, np.float32))
    assert large.ctypes.data % HUGE_PAGE == 0
    small = huge_page_copy(np.ones(MIN_BYTES // 4 - 1, np.float32))
    assert small.base is None  # an ordinary array, not a view of a mapping of its own


@thp_on_request
def test_the_kernel_may_back_a_large_copy_with_huge_pages() -> None:
    copy = huge_page_copy(np.ones((3 * HUGE_PAGE) // 4, np.float32))
    entry = mapping_of(copy.ctypes.data)
    assert entry is not None and entry.get("THPeligible") == "1", entry


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/smaps")
def test_the_mapping_goes_with_the_last_view() -> None:
    copy = huge_page_copy(np.ones((1024, 1024), np.float32))
    address = copy.ctypes.data
    held = mapping_of(address)
    assert held is not None
    view = copy[10:20]
    del copy
    gc.collect()
    kept = mapping_of(address)
    assert kept is not None and kept["range"] == held["range"]  # the view keeps it
    del view
    gc.collect()
    after = mapping_of(address)
    assert after is None or after["range"] != held["range"]  # unmapped (another mapping may take the place)
