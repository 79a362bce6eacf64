"""Reductions along axes: sum, mean, max, min, argmax, var (``axis`` an int, a tuple, or None for all)."""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal import shapes
from accelerate_lab.tensor.ops.dispatch import apply
from accelerate_lab.tensor.ops.elementwise import cast, div, eq, mul, sub
from accelerate_lab.tensor.ops.shape import broadcast_to, reshape
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["argmax", "max", "mean", "min", "sum", "var"]

Axis = int | Sequence[int] | None


def _kept_shape(x: Tensor, axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if axes is None:
        return (1,) * x.rank
    return tuple(1 if i in axes else d for i, d in enumerate(x.shape))


def _count(x: Tensor, axes: tuple[int, ...] | None) -> int:
    return x.size if axes is None else math.prod(x.shape[i] for i in axes)


def _spread(g: Tensor, x: Tensor, axes: tuple[int, ...] | None) -> Tensor:
    """A reduced gradient broadcast back over the reduced axes."""
    return broadcast_to(reshape(g, _kept_shape(x, axes)), x.shape)


def sum(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes by default)."""
    axes = shapes.normalize_axes(axis, x.rank)
    return apply("sum", (x,), {"axis": axes, "keepdims": keepdims}, backward=lambda g: (_spread(g, x, axes),))


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis`` (integers give float64, as numpy)."""
    axes = shapes.normalize_axes(axis, x.rank)
    return apply(
        "mean",
        (x,),
        {"axis": axes, "keepdims": keepdims},
        backward=lambda g: (div(_spread(g, x, axes), _count(x, axes)),),
    )


def _extreme(kernel: str, x: Tensor, axis: Axis, keepdims: bool) -> Tensor:
    axes = shapes.normalize_axes(axis, x.rank)
    if 0 in x.shape and (axes is None or builtins.any(x.shape[i] == 0 for i in axes)):
        raise ShapeError(f"{kernel} of an empty axis of shape {x.shape} has no value")

    def rule(g: Tensor) -> tuple[Tensor]:
        # the gradient is shared equally among the positions that reach the extreme value
        hits = cast(eq(x, _spread(out, x, axes)), x.dtype)
        count = _spread(sum(hits, axes, keepdims=True), x, axes)
        return (div(mul(hits, _spread(g, x, axes)), count),)

    out = apply(kernel, (x,), {"axis": axes, "keepdims": keepdims}, backward=rule)
    return out


def max(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Largest element over ``axis``."""
    return _extreme("max", x, axis, keepdims)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Smallest element over ``axis``."""
    return _extreme("min", x, axis, keepdims)


def argmax(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index (int64) of the largest element along one axis, or in the flattened tensor."""
    axes = None if axis is None else (shapes.normalize_axis(axis, x.rank),)
    if x.size == 0:
        raise ShapeError(f"argmax of an empty tensor of shape {x.shape}")
    return apply("argmax", (x,), {"axis": axes, "keepdims": keepdims})


def var(x: Tensor, axis: Axis = None, keepdims: bool = False, correction: int = 0) -> Tensor:
    """Variance over ``axis``; ``correction=1`` gives the unbiased estimate (numpy's ``ddof``)."""
    axes = shapes.normalize_axes(axis, x.rank)

    def rule(g: Tensor) -> tuple[Tensor]:
        centered = sub(x, apply("mean", (x,), {"axis": axes, "keepdims": True}))
        return (mul(centered, div(_spread(g, x, axes), (_count(x, axes) - correction) / 2)),)

    return apply("var", (x,), {"axis": axes, "keepdims": keepdims, "correction": correction}, backward=rule)
