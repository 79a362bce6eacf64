"""Matrix products: ``matmul`` (numpy's rules, batched, broadcast batch dims) and ``linear``."""

from __future__ import annotations

from accelerate_lab.tensor.ops.dispatch import apply
from accelerate_lab.tensor.ops.elementwise import add, unbroadcast
from accelerate_lab.tensor.ops.shape import reshape, transpose
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["linear", "matmul", "matrix_transpose"]


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
