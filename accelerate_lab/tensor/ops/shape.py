"""Shape and layout ops: reshape, transpose, concatenation, indexing, broadcasting.

On the cpu these return numpy views where numpy would (``reshape`` of a contiguous tensor,
``transpose``, basic indexing), so they share storage with their input.
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Sequence

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal import shapes
from accelerate_lab.tensor.ops.dispatch import apply, device_of
from accelerate_lab.tensor.tensor import Tensor, normalize_index

__all__ = [
    "broadcast_shapes",
    "broadcast_to",
    "clone",
    "concat",
    "flatten",
    "getitem",
    "reshape",
    "slice",
    "squeeze",
    "stack",
    "transpose",
    "unsqueeze",
]


def broadcast_shapes(*shapes_: Sequence[int]) -> tuple[int, ...]:
    """The shape several shapes broadcast to; ``ShapeError`` naming them when they do not.

    >>> broadcast_shapes((3, 1), (1, 4))
    (3, 4)
    """
    return shapes.broadcast_shapes(*shapes_)


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """The same elements in a new shape (one dimension may be ``-1``)."""
    new = shapes.reshape_shape(x.size, x.shape, shape)
    old = x.shape
    return apply("reshape", (x,), {"shape": new}, backward=lambda g: (reshape(g, old),))


def flatten(x: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes ``start_axis..end_axis`` (inclusive) into one."""
    if x.rank == 0:
        return reshape(x, (1,))
    start, end = shapes.normalize_axis(start_axis, x.rank), shapes.normalize_axis(end_axis, x.rank)
    if start > end:
        raise ShapeError(
            f"flatten: start_axis {start_axis} comes after end_axis {end_axis} for rank {x.rank}"
        )
    s = x.shape
    return reshape(x, (*s[:start], math.prod(s[start : end + 1]), *s[end + 1 :]))


def transpose(x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None)."""
    perm = (
        tuple(reversed(range(x.rank)))
        if axes is None
        else tuple(shapes.normalize_axis(a, x.rank) for a in axes)
    )
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"transpose: axes {tuple(axes or ())} are not a permutation of {x.rank} axes")
    return apply(
        "transpose",
        (x,),
        {"axes": perm},
        backward=lambda g: (transpose(g, [perm.index(i) for i in range(len(perm))]),),
    )


def squeeze(x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    """Drop axes of size 1 (all of them, or those named, which must have size 1)."""
    if axis is None:
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = set(shapes.normalize_axes(axis, x.rank) or ())
        bad = [i for i in drop if x.shape[i] != 1]
        if bad:
            raise ShapeError(f"squeeze: axis {bad[0]} of shape {x.shape} has size {x.shape[bad[0]]}, not 1")
    return reshape(x, [d for i, d in enumerate(x.shape) if i not in drop])


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert an axis of size 1 at ``axis`` (negative counts from the end of the result)."""
    position = shapes.normalize_axis(axis, x.rank + 1)
    return reshape(x, (*x.shape[:position], 1, *x.shape[position:]))


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis; the other dimensions must match."""
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    device_of(tensors)
    dim = shapes.normalize_axis(axis, tensors[0].rank)
    shapes.concat_shape([t.shape for t in tensors], dim)
    bounds = [0]
    for t in tensors:
        bounds.append(bounds[-1] + t.shape[dim])

    def rule(g: Tensor) -> list[Tensor | None]:
        lead = (builtins.slice(None),) * dim
        return [getitem(g, (*lead, builtins.slice(lo, hi))) for lo, hi in itertools.pairwise(bounds)]

    return apply("concat", tuple(tensors), {"axis": dim}, backward=rule)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new axis."""
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    if len({t.shape for t in tensors}) != 1:
        raise ShapeError(f"stack needs equal shapes, got {', '.join(str(t.shape) for t in tensors)}")
    position = shapes.normalize_axis(axis, tensors[0].rank + 1)
    return concat([unsqueeze(t, position) for t in tensors], position)


def getitem(x: Tensor, key: object) -> Tensor:
    """Basic indexing (``t[1:, ::2, None, ..., -1]``); on the cpu the result is a view."""
    index = normalize_index(key)
    shape = x.shape
    return apply(
        "getitem",
        (x,),
        {"index": index},
        backward=lambda g: (apply("index_backward", (g,), {"shape": shape, "index": index}),),
    )


def slice(x: Tensor, start: int, end: int | None = None, axis: int = 0, step: int = 1) -> Tensor:
    """Elements ``start:end:step`` along ``axis`` (same as ``t[..., start:end:step, ...]``)."""
    dim = shapes.normalize_axis(axis, x.rank)
    return getitem(x, (*(builtins.slice(None),) * dim, builtins.slice(start, end, step)))


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """A read-only broadcast of ``x`` to ``shape`` (numpy's rules)."""
    target = tuple(int(d) for d in shape)
    if shapes.broadcast_shapes(x.shape, target) != target:
        raise ShapeError(f"cannot broadcast {x.shape} to {target}")
    from accelerate_lab.tensor.ops.elementwise import unbroadcast

    old = x.shape
    return apply("broadcast_to", (x,), {"shape": target}, backward=lambda g: (unbroadcast(g, old),))


def clone(x: Tensor) -> Tensor:
    """A copy with its own row-major storage; gradients flow through."""
    return apply("copy", (x,), backward=lambda g: (g,))
