"""Elementwise arithmetic, math and comparisons, with numpy broadcasting and dtype promotion."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from accelerate_lab.tensor.dtypes import DTypeLike, Scalar, dtype_name
from accelerate_lab.tensor.ops.dispatch import apply, device_of
from accelerate_lab.tensor.tensor import Tensor

__all__ = [
    "abs",
    "add",
    "as_operand",
    "cast",
    "div",
    "eq",
    "exp",
    "ge",
    "gt",
    "le",
    "log",
    "lt",
    "maximum",
    "minimum",
    "mul",
    "ne",
    "neg",
    "pow",
    "sign",
    "sqrt",
    "sub",
    "unbroadcast",
    "where",
]

Operand = Tensor | Scalar


def as_operand(x: object, like: Tensor | None) -> Tensor | Scalar:
    """Tensors and Python numbers pass through; arrays and lists become tensors on ``like``'s device."""
    if isinstance(x, Tensor | bool | int | float):
        return x
    if isinstance(x, np.generic):
        return x.item()  # type: ignore[no-any-return]
    array = np.asarray(x)
    if array.dtype == np.float64 and not isinstance(x, np.ndarray):
        array = array.astype(np.float32)  # Python lists of floats are float32, as in al.tensor
    return Tensor(array.shape, array, array.dtype, like._device if like is not None else "cpu")


def unbroadcast(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a broadcast gradient back to ``shape`` (the reverse of broadcasting)."""
    if grad.shape == shape:
        return grad
    extra = grad.rank - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, d in enumerate(shape) if d == 1 and grad.shape[extra + i] != 1
    )
    from accelerate_lab.tensor.ops.reduce import sum as reduce_sum
    from accelerate_lab.tensor.ops.shape import reshape

    return reshape(reduce_sum(grad, axes, keepdims=True), shape) if axes else reshape(grad, shape)


def _shape(x: Operand) -> tuple[int, ...] | None:
    return x.shape if isinstance(x, Tensor) else None


def _grads(
    g: Tensor, a: Operand, b: Operand, ga: Tensor | None, gb: Tensor | None
) -> tuple[Tensor | None, ...]:
    sa, sb = _shape(a), _shape(b)
    return (
        unbroadcast(ga, sa) if ga is not None and sa is not None else None,
        unbroadcast(gb, sb) if gb is not None and sb is not None else None,
    )


def _pair(a: object, b: object) -> tuple[Operand, Operand]:
    if type(a) is Tensor and type(b) is Tensor:
        return a, b
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    if like is None:
        raise TypeError(
            f"at least one operand must be a Tensor, got {type(a).__name__} and {type(b).__name__}"
        )
    return as_operand(a, like), as_operand(b, like)


def add(a: Operand, b: Operand) -> Tensor:
    """``a + b`` with broadcasting."""
    a, b = _pair(a, b)
    return apply("add", (a, b), backward=lambda g: _grads(g, a, b, g, g))


def sub(a: Operand, b: Operand) -> Tensor:
    """``a - b`` with broadcasting."""
    a, b = _pair(a, b)
    return apply("sub", (a, b), backward=lambda g: _grads(g, a, b, g, neg(g)))


def mul(a: Operand, b: Operand) -> Tensor:
    """``a * b`` with broadcasting."""
    a, b = _pair(a, b)
    return apply("mul", (a, b), backward=lambda g: _grads(g, a, b, mul(g, b), mul(g, a)))


def div(a: Operand, b: Operand) -> Tensor:
    """``a / b`` (true division: integers give floats)."""
    a, b = _pair(a, b)

    def rule(g: Tensor) -> tuple[Tensor | None, ...]:
        ga = div(g, b)
        return _grads(g, a, b, ga, neg(mul(ga, out)) if isinstance(b, Tensor) else None)

    out = apply("div", (a, b), backward=rule)
    return out


def pow(a: Operand, b: Operand) -> Tensor:
    """``a ** b``; the gradient for ``b`` needs ``a > 0``."""
    a, b = _pair(a, b)

    def rule(g: Tensor) -> tuple[Tensor | None, ...]:
        exponent = sub(b, 1) if isinstance(b, Tensor) else b - 1
        ga = mul(g, mul(b, pow(a, exponent))) if isinstance(a, Tensor) else None
        gb = None
        if isinstance(b, Tensor):
            gb = mul(g, mul(out, log(a) if isinstance(a, Tensor) else math.log(a)))
        return _grads(g, a, b, ga, gb)

    out = apply("pow", (a, b), backward=rule)
    return out


def maximum(a: Operand, b: Operand) -> Tensor:
    """Elementwise maximum; at ties each side gets half the gradient."""
    a, b = _pair(a, b)
    return apply("maximum", (a, b), backward=lambda g: _tie_split(g, a, b, gt))


def minimum(a: Operand, b: Operand) -> Tensor:
    """Elementwise minimum; at ties each side gets half the gradient."""
    a, b = _pair(a, b)
    return apply("minimum", (a, b), backward=lambda g: _tie_split(g, a, b, lt))


def _tie_split(
    g: Tensor, a: Operand, b: Operand, wins: Callable[[Operand, Operand], Tensor]
) -> tuple[Tensor | None, ...]:
    """Gradients of max/min(a, b): all to the side that ``wins``, half each at ties."""
    ga = where(eq(a, b), mul(g, 0.5), where(wins(a, b), g, 0.0))
    return _grads(g, a, b, ga, sub(g, ga))


def neg(x: Tensor) -> Tensor:
    """``-x``."""
    return apply("neg", (x,), backward=lambda g: (neg(g),))


def exp(x: Tensor) -> Tensor:
    """``e ** x``."""
    out = apply("exp", (x,), backward=lambda g: (mul(g, out),))
    return out


def log(x: Tensor) -> Tensor:
    """Natural logarithm."""
    return apply("log", (x,), backward=lambda g: (div(g, x),))


def sqrt(x: Tensor) -> Tensor:
    """Square root."""
    out = apply("sqrt", (x,), backward=lambda g: (div(g, mul(out, 2.0)),))
    return out


def abs(x: Tensor) -> Tensor:
    """Absolute value (gradient 0 at 0)."""
    return apply("abs", (x,), backward=lambda g: (mul(g, sign(x)),))


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 (no gradient)."""
    return apply("sign", (x,))


def cast(x: Tensor, dtype: DTypeLike) -> Tensor:
    """A copy converted to ``dtype``; gradients flow between floating dtypes."""
    name = dtype_name(dtype)
    source = x.dtype
    return apply("cast", (x,), {"dtype": name}, backward=lambda g: (cast(g, source),))


def where(condition: Tensor, a: Operand, b: Operand) -> Tensor:
    """``a`` where ``condition`` is true, else ``b``; all three broadcast together."""
    like = condition if isinstance(condition, Tensor) else None
    a, b = as_operand(a, like), as_operand(b, like)
    device_of((condition, a, b))

    def rule(g: Tensor) -> tuple[Tensor | None, ...]:
        ga, gb = _grads(g, a, b, where(condition, g, 0.0), where(condition, 0.0, g))
        return (None, ga, gb)

    return apply("where", (condition, a, b), backward=rule)


def _compare(kernel: str) -> Callable[[Operand, Operand], Tensor]:
    def op(a: Operand, b: Operand) -> Tensor:
        a, b = _pair(a, b)
        return apply(kernel, (a, b))

    op.__name__ = kernel
    op.__doc__ = f"Elementwise ``{kernel}`` comparison, a bool tensor (no gradient)."
    return op


eq = _compare("eq")
ne = _compare("ne")
lt = _compare("lt")
le = _compare("le")
gt = _compare("gt")
ge = _compare("ge")
