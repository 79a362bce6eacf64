"""Rotary position embeddings (RoPE) in GGUF's layout, as two multiplies and a fixed 0/±1 matmul.

llama.cpp's converter reorders each query/key head so that dimensions ``(2i, 2i + 1)`` form the pairs
rotated by angle ``position * theta ** (-2i / head_dim)``. With ``S`` the matrix sending a pair
``(a, b)`` to ``(-b, a)``, the rotation is ``x * cos + (x @ S) * sin``: plain tensor ops, so it runs on
every device. Angles are computed in float32 as Hugging Face's llama does.

>>> import accelerate_lab as al
>>> rope = Rotary(head_dim=2, theta=10000.0, device="cpu")
>>> cos, sin = rope.tables(1, 1)                       # position 1: rotate by 1 radian
>>> [round(v, 4) for v in rope.apply(al.tensor([[[1.0, 0.0]]]), cos, sin).numpy().ravel().tolist()]
[0.5403, 0.8415]
"""

from __future__ import annotations

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.hal.registry import get_device
from accelerate_lab.tensor import Tensor, ops, tensor

__all__ = ["Rotary"]


class Rotary:
    """Cos/sin tables for positions, and the rotation of ``(..., heads, head_dim)`` tensors."""

    def __init__(self, head_dim: int, theta: float, device: str | Device) -> None:
        self.device = get_device(device)
        exponents = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
        self._inverse_frequencies = (np.float32(1.0) / (np.float32(theta) ** exponents)).astype(np.float32)
        swap = np.zeros((head_dim, head_dim), np.float32)
        pairs = np.arange(0, head_dim, 2)
        swap[pairs + 1, pairs] = -1.0  # (x @ swap)[2i] = -x[2i+1]
        swap[pairs, pairs + 1] = 1.0  # (x @ swap)[2i+1] = x[2i]
        self._swap = tensor(swap, device=self.device)

    def tables(self, start: int, length: int) -> tuple[Tensor, Tensor]:
        """``cos`` and ``sin`` of positions ``start .. start + length - 1``, ``(length, 1, head_dim)``."""
        positions = np.arange(start, start + length, dtype=np.float32)
        angles = np.repeat(positions[:, None] * self._inverse_frequencies[None, :], 2, axis=1)[:, None, :]
        return tensor(np.cos(angles), device=self.device), tensor(np.sin(angles), device=self.device)

    def apply(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """``x`` (``(length, heads, head_dim)``) rotated by the tables of its positions."""
        return ops.add(ops.mul(x, cos), ops.mul(ops.matmul(x, self._swap), sin))
