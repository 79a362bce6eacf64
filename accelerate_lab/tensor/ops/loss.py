"""Losses, averaged over their elements as PyTorch's defaults: mse, cross-entropy, binary cross-entropy."""

from __future__ import annotations

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.tensor.ops.elementwise import add, cast, eq, log, maximum, mul, neg, sub
from accelerate_lab.tensor.ops.nn import log_softmax
from accelerate_lab.tensor.ops.reduce import mean
from accelerate_lab.tensor.ops.reduce import sum as reduce_sum
from accelerate_lab.tensor.ops.shape import unsqueeze
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["binary_cross_entropy", "cross_entropy", "mse_loss"]


def _same_shape(name: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ShapeError(f"{name}: prediction {a.shape} and target {b.shape} must have the same shape")


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean of ``(pred - target) ** 2``."""
    _same_shape("mse_loss", pred, target)
    diff = sub(pred, target)
    return mean(mul(diff, diff))


def cross_entropy(logits: Tensor, target_ids: Tensor) -> Tensor:
    """Mean negative log-likelihood of integer class ids under ``softmax(logits)``.

    ``logits`` is ``(N, C)`` (or ``(C,)`` for one sample), ``target_ids`` is ``(N,)`` (or ``()``).
    """
    if target_ids.dtype not in ("int32", "int64", "uint8"):
        raise TypeError(f"cross_entropy targets must be integer class ids, got {target_ids.dtype}")
    if logits.shape[:-1] != target_ids.shape:
        raise ShapeError(f"cross_entropy: logits {logits.shape} need targets of shape {logits.shape[:-1]}")
    classes = Tensor._wrap(logits._device.upload(np.arange(logits.shape[-1])), logits._device)
    one_hot = cast(eq(unsqueeze(target_ids, -1), classes), logits.dtype)
    picked = reduce_sum(mul(log_softmax(logits, -1), one_hot), -1)
    return neg(mean(picked))


def binary_cross_entropy(prob: Tensor, target: Tensor) -> Tensor:
    """Mean of ``-(t log p + (1 - t) log(1 - p))``; logs are clamped at -100 as PyTorch does."""
    _same_shape("binary_cross_entropy", prob, target)
    log_p = maximum(log(prob), -100.0)
    log_q = maximum(log(sub(1.0, prob)), -100.0)
    return neg(mean(add(mul(target, sub(log_p, log_q)), log_q)))
