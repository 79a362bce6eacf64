"""Catalogue kernels as WebNN builder calls, with numpy's semantics (sans I/O).

:func:`lower` records the calls of one kernel into a :class:`GraphRecorder` and returns the operand
of its result: casts where numpy promotes, constants for Python scalars, reshapes around 1-d
matmuls and 1-d convolutions, and compositions for what WebNN has no single op for (``silu``,
tanh-``gelu``, ``log_softmax``, ``var``, attention). It raises :class:`NotInWebnn` for kernels with
no WebNN form here (in-place writes, scatters, index-checked gathers, backward convolutions) and,
through the recorder, for calls the context does not support; ``browser:webnn`` runs those with
the WebGPU kernels instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal import shapes
from accelerate_lab.hal.browser_webnn_graph import GraphRecorder, NotInWebnn, Operand

__all__ = ["Arg", "lower"]

Arg = Operand | bool | int | float | None
Lowering = Callable[[GraphRecorder, str, Sequence[Any], Mapping[str, Any], np.dtype[np.generic]], Operand]

_BOOL = np.dtype(np.bool_)
_UNARY = frozenset(("neg", "exp", "log", "sqrt", "abs", "sign", "erf", "relu", "sigmoid", "tanh"))
_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "pow": "pow", "maximum": "max"}
_BINARY |= {"minimum": "min", "eq": "equal", "ne": "notEqual", "lt": "lesser", "le": "lesserOrEqual"}
_BINARY |= {"gt": "greater", "ge": "greaterOrEqual"}
_COMPARE = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
_REDUCE = {"sum": "reduceSum", "mean": "reduceMean", "max": "reduceMax", "min": "reduceMin"}


def _dtype_of(x: Arg) -> np.dtype[np.generic] | bool | int | float:
    return x.dtype if isinstance(x, Operand) else x  # type: ignore[return-value]


def _value(rec: GraphRecorder, x: Arg, dtype: np.dtype[np.generic]) -> Operand:
    """An operand of ``dtype``: a tensor cast as numpy casts it, or a scalar as a constant."""
    if isinstance(x, Operand):
        return rec.cast(x, dtype)
    assert x is not None
    return rec.constant(x, dtype)


def _binary(rec: GraphRecorder, op: str, a: Operand, b: Operand, dtype: np.dtype[np.generic]) -> Operand:
    return rec.call(op, [a, b], shapes.broadcast_shapes(a.shape, b.shape), dtype)


def _elementwise(
    rec: GraphRecorder, kernel: str, args: Sequence[Any], params: Mapping[str, Any], out: np.dtype[np.generic]
) -> Operand:
    if kernel == "cast":
        return rec.cast(args[0], out)
    compute = np.result_type(*(_dtype_of(x) for x in args)) if kernel in _COMPARE else out
    if kernel == "where":
        condition = _value(rec, args[0], _BOOL)
        a, b = (_value(rec, x, compute) for x in args[1:])
        shape = shapes.broadcast_shapes(condition.shape, a.shape, b.shape)
        return rec.call("where", [condition, a, b], shape, out)
    values = [_value(rec, x, compute) for x in args]
    if kernel in _BINARY:
        return _binary(rec, _BINARY[kernel], values[0], values[1], out)
    (x,) = values
    if kernel in _UNARY:
        return rec.call(kernel, [x], x.shape, out)
    if kernel == "silu":
        return _binary(rec, "mul", x, rec.call("sigmoid", [x], x.shape, out), out)
    if kernel == "gelu" and params.get("approximate", "none") == "none":
        return rec.call("gelu", [x], x.shape, out)
    if kernel == "gelu":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = _binary(rec, "mul", _binary(rec, "mul", x, x, out), x, out)
        inner = _binary(rec, "add", x, _binary(rec, "mul", cube, rec.constant(0.044715, out), out), out)
        scaled = _binary(rec, "mul", inner, rec.constant(math.sqrt(2 / math.pi), out), out)
        one_plus = _binary(rec, "add", rec.call("tanh", [scaled], x.shape, out), rec.constant(1.0, out), out)
        return _binary(rec, "mul", _binary(rec, "mul", x, rec.constant(0.5, out), out), one_plus, out)
    raise NotInWebnn(f"no WebNN form of {kernel}")


def _matmul(
    rec: GraphRecorder, kernel: str, args: Sequence[Any], params: Mapping[str, Any], out: np.dtype[np.generic]
) -> Operand:
    dtype = np.result_type(args[0].dtype, args[1].dtype)
    a, b = (rec.cast(x, dtype) for x in args)
    shape = shapes.matmul_shape(a.shape, b.shape)
    if len(a.shape) == 1:
        a = rec.reshape(a, (1, *a.shape))
    if len(b.shape) == 1:
        b = rec.reshape(b, (*b.shape, 1))
    batch = shapes.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    y = rec.call("matmul", [a, b], (*batch, a.shape[-2], b.shape[-1]), dtype)
    return rec.reshape(y, shape)


def _reduce_shape(shape: tuple[int, ...], axes: Sequence[int], keep: bool) -> tuple[int, ...]:
    return tuple(1 if d in axes else n for d, n in enumerate(shape) if keep or d not in axes)


def _reduce(
    rec: GraphRecorder, kernel: str, args: Sequence[Any], params: Mapping[str, Any], out: np.dtype[np.generic]
) -> Operand:
    x: Operand = args[0]
    axis = params.get("axis")
    axes = list(range(len(x.shape))) if axis is None else list(axis)
    keep = bool(params.get("keepdims"))
    shape = _reduce_shape(x.shape, axes, keep)
    if kernel == "argmax":
        if axis is None:
            flat = rec.reshape(x, (math.prod(x.shape),))
            found = rec.call(
                "argMax", [flat, 0, {"keepDimensions": False, "outputDataType": "int64"}], (), out
            )
            return rec.reshape(found, shape)
        options = {"keepDimensions": keep, "outputDataType": "int64"}
        return rec.call("argMax", [x, axes[0], options], shape, out)
    x = rec.cast(x, out)
    if kernel == "var":  # sum((x - mean)^2) / (n - correction), as numpy
        count = math.prod(x.shape[d] for d in axes)
        mean = rec.call(
            "reduceMean", [x, {"axes": axes, "keepDimensions": True}], _reduce_shape(x.shape, axes, True), out
        )
        deviation = _binary(rec, "sub", x, mean, out)
        squares = _binary(rec, "mul", deviation, deviation, out)
        total = rec.call("reduceSum", [squares, {"axes": axes, "keepDimensions": keep}], shape, out)
        return _binary(rec, "div", total, rec.constant(count - float(params.get("correction", 0)), out), out)
    return rec.call(_REDUCE[kernel], [x, {"axes": axes, "keepDimensions": keep}], shape, out)


def _normalize(
    rec: GraphRecorder, kernel: str, args: Sequence[Any], params: Mapping[str, Any], out: np.dtype[np.generic]
) -> Operand:
    x = rec.cast(args[0], out)
    if not x.shape:
        raise NotInWebnn(f"{kernel} of a 0-d tensor")
    if kernel == "layer_norm":
        options: dict[str, object] = {"axes": [len(x.shape) - 1], "epsilon": float(params["eps"])}
        for name, t in zip(("scale", "bias"), args[1:3], strict=True):
            if t is not None:
                if t.shape != x.shape[-1:]:
                    raise NotInWebnn(f"layer_norm {name} of shape {t.shape} (not {x.shape[-1:]})")
                options[name] = rec.cast(t, out)
        return rec.call("layerNormalization", [x, options], x.shape, out)
    axis = shapes.normalize_axis(int(params["axis"]), len(x.shape))
    if kernel == "softmax":
        return rec.call("softmax", [x, axis], x.shape, out)
    # log_softmax: (x - max) - log(sum(exp(x - max)))
    keep = _reduce_shape(x.shape, [axis], True)
    peak = rec.call("reduceMax", [x, {"axes": [axis], "keepDimensions": True}], keep, out)
    shifted = _binary(rec, "sub", x, peak, out)
    total = rec.call(
        "reduceSum",
        [rec.call("exp", [shifted], x.shape, out), {"axes": [axis], "keepDimensions": True}],
        keep,
        out,
    )
    return _binary(rec, "sub", shifted, rec.call("log", [total], keep, out), out)


def _conv(
    rec: GraphRecorder, kernel: str, args: Sequence[Any], params: Mapping[str, Any], out: np.dtype[np.generic]
) -> Operand:
    if kernel != "conv":
        raise NotInWebnn(f"no WebNN form of {kernel}")
    stride, padding, dilation = (tuple(params[k]) for k in ("stride", "padding", "dilation"))
    groups = int(params["groups"])
    x, w, bias = args
    shape = shapes.conv_output_shape(x.shape, w.shape, stride, padding, dilation, groups)
    dtype = np.result_type(x.dtype, w.dtype)
    x, w = rec.cast(x, dtype), rec.cast(w, dtype)
    if len(stride) == 1:  # as a 2-d convolution of height 1
        x = rec.reshape(x, (x.shape[0], x.shape[1], 1, x.shape[2]))
        w = rec.reshape(w, (w.shape[0], w.shape[1], 1, w.shape[2]))
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    options: dict[str, object] = {
        "padding": [padding[0], padding[0], padding[1], padding[1]],
        "strides": list(stride),
        "dilations": list(dilation),
        "groups": groups,
        "inputLayout": "nchw",
        "filterLayout": "oihw",
    }
    if bias is not None:
        options["bias"] = rec.cast(bias, dtype)
    y_shape = shape if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])
    y = rec.call("conv2d", [x, w, options], y_shape, dtype)
    return rec.reshape(y, shape)


def _attention(
    rec: GraphRecorder, kernel: str, args: Sequence[Any], params: Mapping[str, Any], out: np.dtype[np.generic]
) -> Operand:
    q, k, v, mask = args
    if (
        min(len(q.shape), len(k.shape), len(v.shape)) < 2
        or q.shape[-1] != k.shape[-1]
        or k.shape[-2] != v.shape[-2]
    ):
        raise ShapeError(f"attention shapes do not fit: q {q.shape}, k {k.shape}, v {v.shape}")
    dtype = q.dtype
    k, v = rec.cast(k, dtype), rec.cast(v, dtype)
    length, source = q.shape[-2], k.shape[-2]
    scale = params.get("scale")
    factor = 1 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    perm = [*range(len(k.shape) - 2), len(k.shape) - 1, len(k.shape) - 2]
    kt = rec.call("transpose", [k, {"permutation": perm}], tuple(k.shape[d] for d in perm), dtype)
    scores = _binary(
        rec, "mul", _matmul(rec, "matmul", [q, kt], {}, dtype), rec.constant(factor, dtype), dtype
    )
    if params.get("is_causal"):  # keep j <= i: the lower triangle of ones
        ones = rec.call("expand", [rec.constant(1.0, dtype), [length, source]], (length, source), dtype)
        lower = rec.call("triangular", [ones, {"upper": False, "diagonal": 0}], (length, source), dtype)
        keep = rec.cast(lower, _BOOL)
        scores = rec.call("where", [keep, scores, rec.constant(-math.inf, dtype)], scores.shape, dtype)
    if mask is not None and mask.dtype == _BOOL:
        shape = shapes.broadcast_shapes(mask.shape, scores.shape)
        scores = rec.call("where", [mask, scores, rec.constant(-math.inf, dtype)], shape, dtype)
    elif mask is not None:
        scores = _binary(rec, "add", scores, rec.cast(mask, dtype), dtype)
    weights = rec.call("softmax", [scores, len(scores.shape) - 1], scores.shape, dtype)
    return _matmul(rec, "matmul", [weights, v], {}, dtype)


def _index_items(rank: int, index: tuple[object, ...]) -> list[object]:
    """numpy basic indexing: one item per source axis (Ellipsis expanded), ``None`` items in place."""
    consumed = sum(1 for item in index if item is not None and item is not Ellipsis)
    if consumed > rank:
        raise IndexError(f"too many indices for a tensor of rank {rank}: {len(index)} given")
    if sum(1 for item in index if item is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    fill = [slice(None)] * (rank - consumed)
    at = index.index(Ellipsis) if Ellipsis in index else len(index)
    return [*index[:at], *fill, *index[at + 1 :]]


def _getitem(rec: GraphRecorder, x: Operand, index: tuple[object, ...]) -> Operand:
    """Slices (negative steps through ``reverse``), ints (a size-1 slice) and None as reshapes."""
    starts, sizes, steps, counts, reverse, shape = [], [], [], [], [], []
    axis = 0
    for item in _index_items(len(x.shape), index):
        if item is None:
            shape.append(1)
            continue
        size = x.shape[axis]
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            count = len(range(start, stop, step))
            if step < 0:  # the same elements, read forwards from the reversed axis
                reverse.append(axis)
                start, step = size - 1 - start, -step
            step = step if count > 1 else 1
            starts.append(start if count else 0)
            sizes.append((count - 1) * step + 1 if count else 0)  # WebNN's window: it takes every step-th
            steps.append(step)
            counts.append(count)
            shape.append(count)
        else:
            position = int(item)  # type: ignore[call-overload]
            if not -size <= position < size:
                raise IndexError(f"index {position} is out of bounds for axis {axis} with size {size}")
            starts.append(position % size)
            sizes.append(1)
            steps.append(1)
            counts.append(1)
        axis += 1
    if reverse:
        x = rec.call("reverse", [x, {"axes": reverse}], x.shape, x.dtype)
    if counts != list(x.shape):
        x = rec.call("slice", [x, starts, sizes, {"strides": steps}], tuple(counts), x.dtype)
    return rec.reshape(x, tuple(shape))


def _layout(
    rec: GraphRecorder, kernel: str, args: Sequence[Any], params: Mapping[str, Any], out: np.dtype[np.generic]
) -> Operand:
    x: Operand = args[0]
    if kernel == "copy":  # `lower` gives it an operand of its own
        return x
    if kernel == "reshape":
        return rec.reshape(x, shapes.reshape_shape(math.prod(x.shape), x.shape, params["shape"]))
    if kernel == "transpose":
        axes = [int(a) for a in params["axes"]]
        if sorted(axes) != list(range(len(x.shape))):
            raise ShapeError(f"transpose: axes {tuple(axes)} are not a permutation of {len(x.shape)} axes")
        return rec.call("transpose", [x, {"permutation": axes}], tuple(x.shape[a] for a in axes), x.dtype)
    if kernel == "broadcast_to":
        target = tuple(params["shape"])
        if shapes.broadcast_shapes(x.shape, target) != target:
            raise ShapeError(f"cannot broadcast {x.shape} to {target}")
        return rec.call("expand", [x, list(target)], target, x.dtype)
    if kernel == "getitem":
        return _getitem(rec, x, tuple(params["index"]))
    if kernel == "concat":
        axis = int(params["axis"])
        dtype = np.result_type(*(t.dtype for t in args))
        first = args[0].shape
        for t in args:
            if (
                len(t.shape) != len(first)
                or t.shape[:axis] + t.shape[axis + 1 :] != first[:axis] + first[axis + 1 :]
            ):
                raise ShapeError(
                    f"concat along axis {axis}: shapes {', '.join(str(u.shape) for u in args)} differ"
                )
        shape = (*first[:axis], sum(t.shape[axis] for t in args), *first[axis + 1 :])
        return rec.call("concat", [[rec.cast(t, dtype) for t in args], axis], shape, dtype)
    raise NotInWebnn(f"no WebNN form of {kernel} (it writes in place or scatters)")


_FAMILIES: dict[str, Lowering] = {
    "unary": _elementwise,
    "binary": _elementwise,
    "ternary": _elementwise,
    "linalg": _matmul,
    "reduce": _reduce,
    "normalize": _normalize,
    "conv": _conv,
    "attention": _attention,
    "layout": _layout,
}


def lower(
    rec: GraphRecorder,
    family: str,
    kernel: str,
    args: Sequence[Arg],
    params: Mapping[str, Any],
    out: np.dtype[np.generic],
) -> Operand:
    """Record ``kernel`` (of the catalogue ``family``) on ``args``; its result is always a new operand.

    ``out`` is the result's dtype where numpy decides it from the inputs' (elementwise, reductions,
    normalizations); the other kernels derive theirs. `NotInWebnn` when WebNN cannot run it here.
    """
    lowering = _FAMILIES.get(family)
    if lowering is None:
        raise NotInWebnn(f"no WebNN form of {kernel} (index-checked gathers run with WebGPU)")
    result = lowering(rec, kernel, args, params, out)
    if any(isinstance(a, Operand) and a.index == result.index for a in args):
        result = rec.call("identity", [result], result.shape, result.dtype)
    return result
