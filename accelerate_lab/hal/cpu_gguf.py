"""The cpu device's ``matmul_q4_1`` and ``matmul_q8_0``: compiled C reading GGUF's packed blocks, or numpy.

With ``csrc/gguf.c`` built (`accelerate_lab.hal.cpu_native`), a product of few activation rows (one
token's decode step) reads each packed weight byte once, decoding it to float32 in registers: about
0.6 (``Q4_1``) or 1.1 (``Q8_0``) bytes a weight cross the memory bus instead of float32's 4. From
``BLAS_ROWS`` rows on (a prompt) the compiled code decodes the weight to float32 a slice of rows at a
time, each slice followed by a BLAS product, which beats row-by-row dot products there. Without the
build, numpy decodes the weight whole and multiplies. Either way the decoded weights equal numpy's
bit for bit; only the order of the sums differs.

>>> from accelerate_lab.hal.gguf_quant import pack_rows
>>> block = np.zeros((1, 34), np.uint8); block[0, :2] = np.frombuffer(np.float16(0.5).tobytes(), np.uint8)
>>> block[0, 2:] = 1
>>> matmul_gguf("matmul_q8_0")(np.ones((1, 32), np.float32), pack_rows(block)).tolist()
[[16.0]]
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from accelerate_lab.hal import cpu_native
from accelerate_lab.hal.gguf_quant import GGUF_KERNELS, dequantize_words
from accelerate_lab.hal.kernels import matmul_gguf_shape

__all__ = ["BLAS_ROWS", "DECODED_BYTES", "compiled", "matmul_gguf"]

BLAS_ROWS = 32
"""Activation rows from which the weight is decoded to float32 and multiplied by BLAS."""
DECODED_BYTES = 1 << 20
"""The float32 weight rows decoded at a time for BLAS: memory stays bounded (and cached) at any size."""


class _Native(NamedTuple):
    """One block format's compiled functions: ``matmul(x, m, k, w, n, row_bytes, out)`` and
    ``dequantize(w, n, k, row_bytes, out)`` (pointers as ints)."""

    matmul: Callable[..., None]
    dequantize: Callable[..., None]


@functools.cache
def _native() -> dict[str, _Native] | None:
    """The compiled functions by kernel name, or None where ``gguf.c`` does not build."""
    library = cpu_native.load("gguf")
    if library is None:
        return None
    size, pointer = ctypes.c_long, ctypes.c_void_p
    found = {}
    for kernel, qtype in GGUF_KERNELS.items():
        matmul = getattr(library, f"gguf_matmul_{qtype.lower()}")
        matmul.argtypes = [pointer, size, size, pointer, size, size, pointer]
        matmul.restype = None
        dequantize = getattr(library, f"gguf_dequantize_{qtype.lower()}")
        dequantize.argtypes = [pointer, size, size, size, pointer]
        dequantize.restype = None
        found[kernel] = _Native(matmul, dequantize)
    return found


def compiled() -> bool:
    """Whether the compiled kernels are in use (else numpy decodes each weight whole, per product)."""
    return _native() is not None


def matmul_gguf(kernel: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``x @ W.T`` for the packed GGUF weight of ``kernel`` (``matmul_q4_1`` or ``matmul_q8_0``)."""
    qtype = GGUF_KERNELS[kernel]

    def run(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        m, n = matmul_gguf_shape(kernel, x, weight)
        k = x.shape[1]
        native = _native()
        if native is None:
            product: np.ndarray = x @ dequantize_words(weight, qtype, k).T
            return product
        weight = np.ascontiguousarray(weight)
        row_bytes = weight.shape[1] * 4
        out = np.empty((m, n), np.float32)
        if m < BLAS_ROWS:
            x = np.ascontiguousarray(x)
            native[kernel].matmul(x.ctypes.data, m, k, weight.ctypes.data, n, row_bytes, out.ctypes.data)
            return out
        step = max(1, DECODED_BYTES // (4 * max(k, 1)))
        decoded = np.empty((min(step, n), k), np.float32)
        for start in range(0, n, step):
            rows = min(step, n - start)
            at = weight.ctypes.data + start * row_bytes
            native[kernel].dequantize(at, rows, k, row_bytes, decoded.ctypes.data)
            np.matmul(x, decoded[:rows].T, out=out[:, start : start + rows])
        return out

    return run
