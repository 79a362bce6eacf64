"""GGUF's block formats as the ``matmul_q4_1`` and ``matmul_q8_0`` kernels take them, decoded in numpy.

Each format packs 32 consecutive values of a row into one block:

- ``Q4_1`` (20 bytes): scale ``d`` and minimum ``m`` as float16, then 16 bytes of 4-bit codes; byte ``j``
  holds value ``j`` in its low nibble and value ``j + 16`` in its high nibble; ``x = q * d + m``.
- ``Q8_0`` (34 bytes): scale ``d`` as float16, then 32 signed bytes; ``x = q * d``.

A ``(N, K)`` weight reaches the kernels as ``(N, row_words(qtype, K))`` int32: each row's blocks byte
after byte, four bytes to a little-endian word, the row padded with zeros to whole words (a ``Q8_0``
row of an odd number of blocks gains two bytes). The arithmetic is float32 in llama.cpp's order.

>>> block = np.zeros((1, 34), np.uint8); block[0, :2] = np.frombuffer(np.float16(0.5).tobytes(), np.uint8)
>>> block[0, 2:] = np.arange(32, dtype=np.int8).view(np.uint8)
>>> decode_blocks(block, "Q8_0")[0, :4].tolist()
[0.0, 0.5, 1.0, 1.5]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "BLOCK_SIZE",
    "GGUF_KERNELS",
    "decode_blocks",
    "dequantize_words",
    "pack_rows",
    "row_words",
]

BLOCK_SIZE = 32
BLOCK_BYTES = {"Q4_1": 20, "Q8_0": 34}
GGUF_KERNELS = {"matmul_q4_1": "Q4_1", "matmul_q8_0": "Q8_0"}
"""Each packed-weight kernel of the catalogue and the block format it reads."""


def _scale(blocks: np.ndarray, start: int) -> np.ndarray:
    """The float16 at byte ``start`` of every block, as a float32 column."""
    return np.ascontiguousarray(blocks[:, start : start + 2]).view(np.float16).astype(np.float32)


def decode_blocks(blocks: np.ndarray, qtype: str) -> np.ndarray:
    """``(count, block bytes)`` uint8 blocks of ``qtype`` as ``(count, 32)`` float32 values."""
    if qtype == "Q4_1":
        codes = blocks[:, 4:]
        q = np.concatenate([codes & 0x0F, codes >> 4], axis=1).astype(np.float32)
        q4: np.ndarray = q * _scale(blocks, 0) + _scale(blocks, 2)
        return q4
    q8: np.ndarray = np.ascontiguousarray(blocks[:, 2:]).view(np.int8).astype(np.float32) * _scale(blocks, 0)
    return q8


def row_words(qtype: str, columns: int) -> int:
    """The int32 words of one packed row of ``columns`` values (a multiple of 32)."""
    return -(-(columns // BLOCK_SIZE) * BLOCK_BYTES[qtype] // 4)


def pack_rows(rows: np.ndarray) -> np.ndarray:
    """``(N, bytes)`` uint8 rows of blocks as the kernels' ``(N, words)`` int32, zero-padded."""
    n, size = rows.shape
    padded = np.zeros((n, -(-size // 4) * 4), np.uint8)
    padded[:, :size] = rows
    return padded.view("<i4").astype(np.int32, copy=False)


def dequantize_words(weight: np.ndarray, qtype: str, columns: int) -> np.ndarray:
    """The ``(N, columns)`` float32 values of a weight packed as the kernels take it."""
    n = weight.shape[0]
    blocks = columns // BLOCK_SIZE
    size = blocks * BLOCK_BYTES[qtype]
    raw = np.ascontiguousarray(weight, dtype="<i4").view(np.uint8)[:, :size]
    return decode_blocks(raw.reshape(n * blocks, BLOCK_BYTES[qtype]), qtype).reshape(n, columns)
