"""The precision a model runs in: ``"fp32"``, ``"fp16"`` (float16 weights and activations) or ``"q8"``.

``q8`` is 8-bit weight-only quantization of the linear layers, data-free: the columns of PyTorch's
``(out, in)`` weight are first equalised (column ``k`` divided by ``c_k``, the square root of its
largest magnitude, normalised to mean 1), then each output channel (row) gets a float32 step
``max|row| / 127`` and its values are rounded to int8, packed four to an int32 word. The kernel
``matmul_q8`` multiplies input channel ``k`` by ``c_k`` and widens the bytes to float inside the
matrix product, then scales each output column. Equalising matters: without it, all-MiniLM-L6-v2's
embedding of a short sentence drops to cosine 0.9985 against float32 (0.9995 with it), because
a few columns of the feed-forward projections dwarf the rest of their rows. Activations, biases,
norms and embedding tables stay float32, so a ``q8`` model holds about a quarter of the bytes of
its linear layers. ``fp16`` needs float16 kernels: numpy
on the cpu, ``shader-f16`` on a WebGPU adapter (native ``wgpu`` and ``browser:webgpu`` alike).

>>> import numpy as np
>>> packed, scale, x_scale = quantize_q8(np.array([[0.5, -1.0, 0.25], [1.0, 0.5, 0.25]], np.float32))
>>> packed.shape, packed.dtype.name, packed.view(np.int8)[:, :3].tolist()
((2, 1), 'int32', [[64, -127, 64], [127, 64, 64]])
>>> w = packed.view(np.int8)[:, :3] * scale[:, None] * x_scale    # the weights the kernel uses
>>> bool(np.abs(w - [[0.5, -1.0, 0.25], [1.0, 0.5, 0.25]]).max() < 0.005)
True
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.errors import PrecisionUnsupportedError

__all__ = ["PRECISIONS", "Precision", "check_precision", "float_dtype", "quantize_q8"]

Precision = Literal["fp32", "fp16", "q8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "q8")


def check_precision(dtype: str, device: Device) -> Precision:
    """``dtype`` if the model can run in it on ``device``; else an error that says what to use instead."""
    if dtype not in PRECISIONS:
        choices = ", ".join(map(repr, PRECISIONS))
        raise PrecisionUnsupportedError(f"dtype must be one of {choices}; got {dtype!r}")
    info = device.info()
    if dtype == "fp16" and info.kind != "cpu" and "shader-f16" not in info.features:
        raise PrecisionUnsupportedError(
            f"dtype='fp16' needs float16 kernels, and {device.name} ({info.description}) lacks the "
            "WebGPU feature shader-f16: use dtype='q8' or dtype='fp32' there, or device='cpu'"
        )
    return dtype


def float_dtype(precision: Precision) -> str:
    """The dtype of the float weights and activations of a model in ``precision``."""
    return "float16" if precision == "fp16" else "float32"


def quantize_q8(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(out, in)`` float weights as ``matmul_q8`` reads them: packed int8 ``(out, ceil(in / 4))`` int32
    words (little-endian bytes, rows padded with zeros), the float32 step of each row and the float32
    factor of each column (``weight ~ step[:, None] * int8 * factor[None, :]``)."""
    rows, width = weight.shape
    w = weight.astype(np.float32, copy=False)
    column_peak = np.sqrt(np.abs(w).max(axis=0))
    x_scale = np.where(column_peak > 0, column_peak, 1)
    x_scale = (x_scale / x_scale.mean()).astype(np.float32)
    w = w / x_scale
    peak = np.abs(w).max(axis=1)
    scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
    q = np.zeros((rows, -(-width // 4) * 4), np.int8)
    q[:, :width] = np.clip(np.rint(w / scale[:, None]), -127, 127)
    return q.view("<i4").astype(np.int32, copy=False), scale, x_scale
