"""Neural-network activations and normalisation: relu, gelu, sigmoid, tanh, silu, softmax,
log_softmax, layer_norm, embedding. All numerically stable (no overflow for large inputs)."""

from __future__ import annotations

import math
from typing import Literal

from accelerate_lab.hal import shapes
from accelerate_lab.tensor import autograd
from accelerate_lab.tensor.ops.dispatch import apply
from accelerate_lab.tensor.ops.elementwise import add, cast, div, exp, gt, mul, sqrt, sub
from accelerate_lab.tensor.ops.reduce import mean
from accelerate_lab.tensor.ops.reduce import sum as reduce_sum
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["embedding", "gelu", "layer_norm", "log_softmax", "relu", "sigmoid", "silu", "softmax", "tanh"]

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``."""
    return apply("relu", (x,), backward=lambda g: (mul(g, cast(gt(x, 0), g.dtype)),))


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``."""
    out = apply("sigmoid", (x,), backward=lambda g: (mul(g, mul(out, sub(1.0, out))),))
    return out


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    out = apply("tanh", (x,), backward=lambda g: (mul(g, sub(1.0, mul(out, out))),))
    return out


def silu(x: Tensor) -> Tensor:
    """``x * sigmoid(x)`` (SiLU / swish)."""

    def rule(g: Tensor) -> tuple[Tensor]:
        s = sigmoid(x)
        return (mul(g, add(s, mul(x, mul(s, sub(1.0, s))))),)

    return apply("silu", (x,), backward=rule)


def gelu(x: Tensor, approximate: Literal["none", "tanh"] = "none") -> Tensor:
    """GELU: exact with the error function (``"none"``), or the tanh approximation (``"tanh"``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")

    def rule(g: Tensor) -> tuple[Tensor]:
        if approximate == "tanh":
            inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), _SQRT_2_OVER_PI)
            t = tanh(inner)
            d_inner = mul(add(mul(mul(x, x), 3 * 0.044715), 1.0), _SQRT_2_OVER_PI)
            slope = add(mul(add(t, 1.0), 0.5), mul(mul(mul(x, 0.5), sub(1.0, mul(t, t))), d_inner))
        else:
            cdf = mul(add(apply("erf", (mul(x, 1 / math.sqrt(2)),)), 1.0), 0.5)
            pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / math.sqrt(2 * math.pi))
            slope = add(cdf, mul(x, pdf))
        return (mul(g, slope),)

    return apply("gelu", (x,), {"approximate": approximate}, backward=rule)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed after subtracting the maximum."""
    dim = shapes.normalize_axis(axis, x.rank)
    out = apply(
        "softmax",
        (x,),
        {"axis": dim},
        backward=lambda g: (mul(out, sub(g, reduce_sum(mul(g, out), dim, keepdims=True))),),
    )
    return out


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``log(softmax(x))`` without forming the softmax (stable for large logits)."""
    dim = shapes.normalize_axis(axis, x.rank)
    out = apply(
        "log_softmax",
        (x,),
        {"axis": dim},
        backward=lambda g: (sub(g, mul(exp(out), reduce_sum(g, dim, keepdims=True))),),
    )
    return out


def layer_norm(
    x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Normalise over the last axis to zero mean and unit variance, then scale and shift."""
    needs_grad = autograd.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, weight, bias)
    )
    if not needs_grad:
        return apply("layer_norm", (x, weight, bias), {"eps": eps})
    # differentiable path: the same formula from ops that carry gradients
    centered = sub(x, mean(x, -1, keepdims=True))
    out = div(centered, sqrt(add(mean(mul(centered, centered), -1, keepdims=True), eps)))
    if weight is not None:
        out = mul(out, weight)
    return out if bias is None else add(out, bias)


def embedding(ids: Tensor, table: Tensor) -> Tensor:
    """Rows of ``table`` (``num_embeddings, dim``) picked by integer ``ids`` of any shape."""
    if ids.dtype not in ("int32", "int64", "uint8"):
        raise TypeError(f"embedding ids must be integers, got {ids.dtype}")
    if table.rank != 2:
        raise ValueError(f"embedding table must be 2-D (num_embeddings, dim), got shape {table.shape}")
    rows = table.shape[0]
    return apply(
        "embedding",
        (ids, table),
        backward=lambda g: (None, apply("embedding_backward", (ids, g), {"num_embeddings": rows})),
    )
