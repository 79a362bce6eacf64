"""Dequantizing GGUF tensors in numpy: ``Q4_1`` and ``Q8_0`` blocks (plus plain ``F32``/``F16``).

The block formats are described (and decoded) in `accelerate_lab.hal.gguf_quant`, which the packed
matmul kernels share; results equal the `gguf` package's own.

>>> import numpy as np
>>> block = np.zeros(34, np.uint8); block[:2] = np.frombuffer(np.float16(0.5).tobytes(), np.uint8)
>>> block[2:] = np.arange(32, dtype=np.int8).view(np.uint8)
>>> dequantize(block[None, :], "Q8_0", (1, 32))[0, :4].tolist()
[0.0, 0.5, 1.0, 1.5]
"""

from __future__ import annotations

import math

import numpy as np

from accelerate_lab.hal.gguf_quant import BLOCK_BYTES, BLOCK_SIZE, decode_blocks
from accelerate_lab.models.llm.errors import UnsupportedQuantization

__all__ = ["BLOCK_BYTES", "BLOCK_SIZE", "SUPPORTED", "dequantize", "packed_rows"]

SUPPORTED = ("F32", "F16", *BLOCK_BYTES)


def packed_rows(data: np.ndarray, qtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The packed bytes of a ``qtype`` tensor of ``shape`` as ``(rows, blocks per row, block bytes)``."""
    if qtype not in BLOCK_BYTES:
        raise UnsupportedQuantization(
            f"{qtype} is not a block format here; block formats: {', '.join(BLOCK_BYTES)}"
        )
    columns = shape[-1]
    if columns % BLOCK_SIZE:
        raise UnsupportedQuantization(
            f"a {qtype} row of {columns} values is not a whole number of 32-value blocks"
        )
    rows = math.prod(shape[:-1])
    raw = np.asarray(data, dtype=np.uint8)
    expected = rows * (columns // BLOCK_SIZE) * BLOCK_BYTES[qtype]
    if raw.size != expected:
        raise UnsupportedQuantization(f"{qtype} data of shape {shape} needs {expected} bytes, got {raw.size}")
    return raw.reshape(rows, columns // BLOCK_SIZE, BLOCK_BYTES[qtype])


def dequantize(data: np.ndarray, qtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 values of a GGUF tensor: ``data`` as stored (values or packed blocks), in numpy ``shape``.

    ``UnsupportedQuantization`` names the formats decoded here when ``qtype`` is another (K-quants, ...).
    """
    if qtype in ("F32", "F16"):
        return np.asarray(data).astype(np.float32).reshape(shape)
    if qtype not in BLOCK_BYTES:
        raise UnsupportedQuantization(
            f"GGUF tensors in {qtype} are not supported (supported: {', '.join(SUPPORTED)}); "
            "requantize the file with llama.cpp's llama-quantize to Q4_1 or Q8_0"
        )
    blocks = packed_rows(data, qtype, shape)
    values = decode_blocks(blocks.reshape(-1, BLOCK_BYTES[qtype]), qtype)
    return values.reshape(shape)
