"""Matrix products: ``matmul`` (numpy's rules, batched, broadcast batch dims), ``linear`` and
``fused_linear``."""

from __future__ import annotations

from typing import Literal

from accelerate_lab.tensor import autograd
from accelerate_lab.tensor.ops.dispatch import apply, device_of
from accelerate_lab.tensor.ops.elementwise import add, unbroadcast
from accelerate_lab.tensor.ops.nn import gelu
from accelerate_lab.tensor.ops.shape import reshape, transpose
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["fused_linear", "linear", "matmul", "matrix_transpose"]


def matrix_transpose(x: Tensor) -> Tensor:
    """Swap the last two axes."""
    perm = (*range(x.rank - 2), x.rank - 1, x.rank - 2)
    return transpose(x, perm)


def _as_matrix(x: Tensor, column: bool) -> Tensor:
    """numpy's 1-D promotion: a vector becomes a row (left operand) or a column (right operand)."""
    if x.rank != 1:
        return x
    return reshape(x, (x.shape[0], 1) if column else (1, x.shape[0]))


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with numpy's rules: 1-D operands are promoted, batch dimensions broadcast.

    >>> import accelerate_lab as al
    >>> (al.ones([2, 3]) @ al.ones([3])).tolist()
    [3.0, 3.0]
    """

    def rule(g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a2, b2 = _as_matrix(a, column=False), _as_matrix(b, column=True)
        g2 = g
        if a.rank == 1:
            g2 = reshape(g2, (*g2.shape[:-1], 1, g2.shape[-1]) if b.rank > 1 else (1, *g2.shape))
        if b.rank == 1:
            g2 = reshape(g2, (*g2.shape, 1))
        ga = (
            reshape(unbroadcast(matmul(g2, matrix_transpose(b2)), a2.shape), a.shape)
            if a.requires_grad
            else None
        )
        gb = (
            reshape(unbroadcast(matmul(matrix_transpose(a2), g2), b2.shape), b.shape)
            if b.requires_grad
            else None
        )
        return ga, gb

    return apply("matmul", (a, b), backward=rule)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with ``weight`` shaped ``(out_features, in_features)``, as PyTorch."""
    out = matmul(x, transpose(weight))
    return out if bias is None else add(out, bias)


def fused_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    activation: Literal["none", "gelu"] = "none",
    residual: Tensor | None = None,
) -> Tensor:
    """``activation(x @ weight + bias) + residual`` for a 2-D ``x`` and a ``weight`` held ``(in, out)``.

    One kernel where the device has ``fused_linear`` (the cpu's adds the bias and residual inside its
    BLAS call and runs gelu on each thread's rows while they are in cache), else ``matmul``, ``add``
    and ``gelu``: the same numbers within float32 rounding. Gradients flow through the composition.

    >>> import accelerate_lab as al
    >>> x, w = al.ones([2, 3]), al.ones([3, 4])
    >>> al.fused_linear(x, w, al.ones([4]), residual=al.ones([2, 4])).tolist()[0]
    [5.0, 5.0, 5.0, 5.0]
    """
    if activation not in ("none", "gelu"):
        raise ValueError(f"fused_linear activation must be 'none' or 'gelu', got {activation!r}")
    inputs = (x, weight, bias, residual)
    wants_grad = autograd.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    if not wants_grad and device_of(inputs).supports("fused_linear"):
        return apply("fused_linear", inputs, {"activation": activation})
    out = matmul(x, weight)
    if bias is not None:
        out = add(out, bias)
    if activation == "gelu":
        out = gelu(out)
    return out if residual is None else add(out, residual)
