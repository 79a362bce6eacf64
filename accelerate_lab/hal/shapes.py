"""Shape rules shared by every device: broadcasting, matmul, axes, reshape, convolution.

Each function returns the result shape or raises :class:`ShapeError` with a message that
names the shapes involved.

>>> broadcast_shapes((2, 1, 3), (4, 1))
(2, 4, 3)
>>> matmul_shape((5, 2, 3), (3, 4))
(5, 2, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from accelerate_lab.errors import ShapeError

__all__ = [
    "broadcast_shapes",
    "concat_shape",
    "conv_output_shape",
    "matmul_shape",
    "normalize_axes",
    "normalize_axis",
    "reshape_shape",
]

Shape = tuple[int, ...]


def broadcast_shapes(*shapes: Sequence[int]) -> Shape:
    """numpy's broadcasting of several shapes."""
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for shape in shapes:
        for i, dim in enumerate(shape, start=rank - len(shape)):
            if dim == out[i] or dim == 1:
                continue
            if out[i] != 1:
                listed = " with ".join(str(tuple(s)) for s in shapes)
                raise ShapeError(f"cannot broadcast {listed}: dimension {dim} does not match {out[i]}")
            out[i] = dim
    return tuple(out)


def matmul_shape(a: Sequence[int], b: Sequence[int]) -> Shape:
    """numpy's ``matmul`` result shape, with its 1-D rules and broadcast batch dimensions."""
    if len(a) == 0 or len(b) == 0:
        raise ShapeError(f"matmul needs tensors of rank >= 1, got {tuple(a)} and {tuple(b)}")
    a2 = (1, *a) if len(a) == 1 else tuple(a)
    b2 = (*b, 1) if len(b) == 1 else tuple(b)
    if a2[-1] != b2[-2]:
        raise ShapeError(
            f"matmul: cannot multiply {tuple(a)} by {tuple(b)}: inner dimensions {a2[-1]} and {b2[-2]} differ"
        )
    try:
        batch = broadcast_shapes(a2[:-2], b2[:-2])
    except ShapeError:
        raise ShapeError(f"matmul: batch dimensions of {tuple(a)} and {tuple(b)} do not broadcast") from None
    out = [*batch, a2[-2], b2[-1]]
    if len(b) == 1:
        out.pop()
    if len(a) == 1:
        out.pop(-1 if len(b) == 1 else -2)
    return tuple(out)


def concat_shape(parts: Sequence[Sequence[int]], axis: int) -> Shape:
    """The shape of ``parts`` joined along ``axis`` (non-negative); the other dimensions must match.

    >>> concat_shape([(2, 3), (2, 4)], 1)
    (2, 7)
    """
    first = tuple(parts[0])
    for part in parts:
        if (
            len(part) != len(first)
            or tuple(part[:axis]) + tuple(part[axis + 1 :]) != first[:axis] + first[axis + 1 :]
        ):
            listed = ", ".join(str(tuple(p)) for p in parts)
            raise ShapeError(f"concat along axis {axis}: shapes {listed} differ outside that axis")
    return (*first[:axis], sum(part[axis] for part in parts), *first[axis + 1 :])


def normalize_axis(axis: int, rank: int) -> int:
    """A non-negative axis; ``ShapeError`` when out of range."""
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank if rank else 0


def normalize_axes(axis: int | Sequence[int] | None, rank: int) -> tuple[int, ...] | None:
    """Sorted non-negative axes (``None`` stays ``None``: all axes); repeated axes are an error."""
    if axis is None:
        return None
    if isinstance(axis, int):
        return (normalize_axis(axis, rank),)
    axes = tuple(axis)
    out = tuple(sorted(normalize_axis(a, rank) for a in axes))
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis}")
    return out


def reshape_shape(size: int, old: Sequence[int], new: Sequence[int]) -> Shape:
    """Resolve one ``-1`` in ``new`` and check that the element count is unchanged."""
    new = tuple(map(int, new))
    lowest = min(new, default=0)
    if lowest >= 0 and math.prod(new) == size:  # the common case: nothing to resolve
        return new
    if lowest < -1 or new.count(-1) > 1:
        raise ShapeError(f"cannot reshape {tuple(old)} to {new}: only one -1 and no negative sizes")
    known = math.prod(d for d in new if d != -1)
    if lowest == -1 and known and size % known == 0:
        return tuple(size // known if d == -1 else d for d in new)
    listed = f"{new} ({known} elements)" if lowest >= 0 else str(new)
    raise ShapeError(f"cannot reshape {tuple(old)} ({size} elements) to {listed}")


def conv_output_shape(
    x: Sequence[int],
    w: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> Shape:
    """Output shape of an N-d convolution, input ``(N, C, *spatial)``, weight ``(O, C/groups, *k)``."""
    nd = len(stride)
    if len(x) != nd + 2 or len(w) != nd + 2:
        raise ShapeError(f"conv{nd}d needs input (N, C, {nd} spatial) and weight, got {tuple(x)}, {tuple(w)}")
    if groups < 1 or x[1] % groups or w[0] % groups:
        raise ShapeError(f"groups={groups} must divide input channels {x[1]} and output channels {w[0]}")
    if w[1] * groups != x[1]:
        raise ShapeError(
            f"conv{nd}d: weight {tuple(w)} expects {w[1] * groups} input channels, "
            f"input {tuple(x)} has {x[1]}"
        )
    spatial = []
    for size, k, s, p, d in zip(x[2:], w[2:], stride, padding, dilation, strict=True):
        out = (size + 2 * p - d * (k - 1) - 1) // s + 1
        if out <= 0 or s < 1 or d < 1 or p < 0:
            raise ShapeError(
                f"conv{nd}d: input {tuple(x)} with kernel {tuple(w[2:])}, stride {tuple(stride)}, "
                f"padding {tuple(padding)}, dilation {tuple(dilation)} gives no output"
            )
        spatial.append(out)
    return (x[0], w[0], *spatial)
