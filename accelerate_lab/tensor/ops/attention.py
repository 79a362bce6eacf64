"""Scaled dot-product attention: one fused kernel for inference, composed ops for training."""

from __future__ import annotations

import math

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.tensor import autograd
from accelerate_lab.tensor.ops.dispatch import apply
from accelerate_lab.tensor.ops.elementwise import add, mul, where
from accelerate_lab.tensor.ops.linalg import matmul, matrix_transpose
from accelerate_lab.tensor.ops.nn import softmax
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["scaled_dot_product_attention"]


def _causal_mask(length: int, source: int, like: Tensor) -> Tensor:
    keep = np.tril(np.ones((length, source), dtype=bool))
    return Tensor._wrap(like._device.upload(keep), like._device)


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """``softmax(q @ k.T * scale + mask) @ v`` over shapes ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``.

    ``mask`` is boolean (True: may attend, as PyTorch) or additive floats, broadcast to
    ``(..., L, S)``; ``is_causal`` lets position i see positions ``<= i``. ``scale`` defaults
    to ``1/sqrt(E)``.
    """
    if q.rank < 2 or k.rank < 2 or v.rank < 2:
        raise ShapeError(f"attention needs rank >= 2 inputs, got q {q.shape}, k {k.shape}, v {v.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"attention shapes do not fit: q {q.shape} and k {k.shape} need the same last dim, "
            f"k and v {v.shape} the same length"
        )
    factor = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    needs_grad = autograd.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    if not needs_grad:
        return apply("sdpa", (q, k, v, mask), {"is_causal": is_causal, "scale": factor})
    scores = mul(matmul(q, matrix_transpose(k)), factor)
    if is_causal:
        scores = where(_causal_mask(q.shape[-2], k.shape[-2], q), scores, -math.inf)
    if mask is not None:
        scores = where(mask, scores, -math.inf) if mask.dtype == "bool" else add(scores, mask)
    return matmul(softmax(scores, -1), v)
