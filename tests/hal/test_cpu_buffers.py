"""Reused output blocks of the cpu device: handed out again only once no array refers to them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from accelerate_lab.hal import cpu_buffers


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(cpu_buffers, "_blocks", {})
    yield


SHAPE = (512, 1024)  # 2 MiB of float32: above MIN_BYTES


def test_a_block_in_use_by_any_view_is_not_handed_out_again() -> None:
    a = cpu_buffers.empty(SHAPE, np.float32)
    a[...] = 1
    view = a.T[::2]
    del a
    b = cpu_buffers.empty(SHAPE, np.float32)
    b[...] = 2
    assert not np.shares_memory(b, view) and (view == 1).all()
    held = b.data  # a memoryview: a buffer holder that is not an ndarray
    del b
    c = cpu_buffers.empty(SHAPE, np.float32)
    assert not np.shares_memory(c, np.asarray(held)) and not np.shares_memory(c, view)


def test_an_idle_block_is_reused_under_another_dtype_and_shape() -> None:
    a = cpu_buffers.empty(SHAPE, np.float32)
    address = a.ctypes.data
    del a
    b = cpu_buffers.empty((1024, 256), np.float64)
    assert b.ctypes.data == address and b.dtype == np.float64 and b.flags.c_contiguous
    assert sum(len(blocks) for blocks in cpu_buffers._blocks.values()) == 1


def test_small_arrays_are_plain_and_idle_blocks_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    small = cpu_buffers.empty((4, 4), np.float32)
    assert small.base is None and not cpu_buffers._blocks
    monkeypatch.setattr(cpu_buffers, "MAX_IDLE_BYTES", 5 << 20)  # two idle 2 MiB blocks fit, not three
    held = [cpu_buffers.empty(SHAPE, np.float32) for _ in range(4)]
    assert len(cpu_buffers._blocks[2 << 20]) == 4  # all in use: none dropped
    held.clear()
    cpu_buffers.empty((3 << 20,), np.uint8)  # a new size: the idle 2 MiB blocks are trimmed to the cap
    assert len(cpu_buffers._blocks[2 << 20]) == 2
