"""Dequantization: every tensor of the shipped file, and random blocks, equal the `gguf` package's own."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerate_lab.models.llm import GGUFFile, UnsupportedQuantization, dequantize
from accelerate_lab.models.llm.quant import BLOCK_BYTES


def _reference(data: np.ndarray, qtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return gguf.quants.dequantize(data, gguf.GGMLQuantizationType[qtype]).reshape(shape)


def test_every_tensor_of_the_shipped_file_equals_gguf_dequantization(gguf_file: GGUFFile) -> None:
    kinds = set()
    for name in gguf_file.tensor_names():
        t = gguf_file.tensor(name)
        kinds.add(t.qtype)
        ours = dequantize(t.data, t.qtype, t.shape)
        assert ours.dtype == np.float32 and ours.shape == t.shape
        np.testing.assert_array_equal(ours, _reference(t.data, t.qtype, t.shape), err_msg=name)
    assert {"Q4_1", "Q8_0", "F32"} <= kinds


@settings(max_examples=40, deadline=None)
@given(
    qtype=st.sampled_from(sorted(BLOCK_BYTES)),
    rows=st.integers(1, 3),
    blocks=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_blocks_equal_gguf_dequantization(qtype: str, rows: int, blocks: int, seed: int) -> None:
    data = np.random.default_rng(seed).integers(0, 256, (rows, blocks * BLOCK_BYTES[qtype]), dtype=np.uint8)
    shape = (rows, blocks * 32)
    with np.errstate(invalid="ignore", over="ignore"):  # random scales include inf and NaN
        np.testing.assert_array_equal(dequantize(data, qtype, shape), _reference(data, qtype, shape))


def test_unsupported_formats_name_the_supported_ones() -> None:
    with pytest.raises(UnsupportedQuantization, match="Q4_1, Q8_0"):
        dequantize(np.zeros((1, 144), np.uint8), "Q4_K", (1, 256))


def test_wrong_sizes_are_refused() -> None:
    with pytest.raises(UnsupportedQuantization, match="needs 40 bytes"):
        dequantize(np.zeros((1, 20), np.uint8), "Q4_1", (1, 64))
    with pytest.raises(UnsupportedQuantization, match="whole number"):
        dequantize(np.zeros((1, 20), np.uint8), "Q4_1", (1, 30))
