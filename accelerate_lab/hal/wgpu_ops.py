"""The ``wgpu`` device's kernel handlers, one per catalogue family: validate shapes (``ShapeError``
naming them), choose dtypes as numpy does, and hand off to fusion, views or a WGSL kernel. A handler
raises ``Unsupported`` for combinations without WGSL; the device then runs them on the cpu, visibly."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal import shapes, wgpu_kernels
from accelerate_lab.hal.cpu import CpuDevice
from accelerate_lab.hal.fusion import apply_op
from accelerate_lab.hal.gguf_quant import GGUF_KERNELS
from accelerate_lab.hal.kernels import matmul_gguf_shape, matmul_q8_shape
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, broadcast_view, concat_views, getitem_view
from accelerate_lab.hal.wgpu_codegen import ElementwiseProgram, Unsupported, class_of

if TYPE_CHECKING:
    from accelerate_lab.hal.wgpu_device import WgpuDevice

__all__ = ["OPS"]

Handler = Callable[["WgpuDevice", str, Sequence[Any], Mapping[str, Any]], WgpuBuffer]
_COMPARE = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
_PROBE = CpuDevice()


def _probe(kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> np.dtype[np.generic]:
    """numpy's result dtype (the cpu kernel on one-element stand-ins); ``Unsupported`` if numpy refuses."""
    samples = [np.ones((1,) * len(x.shape), x.dtype) if isinstance(x, WgpuBuffer) else x for x in inputs]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _PROBE.run(kernel, samples, params)
    except Exception as error:
        raise Unsupported(f"numpy refuses these operands ({error})") from error
    assert isinstance(out, np.ndarray)
    dtype: np.dtype[np.generic] = out.dtype
    return dtype


def _cast(dev: WgpuDevice, x: WgpuBuffer, dtype: np.dtype[np.generic]) -> WgpuBuffer:
    if x.dtype == dtype:
        return x
    return dev.graph.elementwise("cast", [x], x.shape, dtype, class_of(dtype, dev.f16))


def elementwise(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    shape = shapes.broadcast_shapes(*(x.shape for x in inputs if isinstance(x, WgpuBuffer)))
    out = _probe(kernel, inputs, params)
    compute = (
        np.result_type(*(x.dtype if isinstance(x, WgpuBuffer) else x for x in inputs))
        if kernel in _COMPARE
        else out
    )
    op = "gelu_tanh" if kernel == "gelu" and params.get("approximate") == "tanh" else kernel
    cls = class_of(compute, dev.f16)
    args: list[WgpuBuffer | np.generic] = []
    for i, x in enumerate(inputs):
        if isinstance(x, WgpuBuffer):
            args.append(x)
        else:
            scalar = np.array(x, dtype=np.bool_ if kernel == "where" and i == 0 else compute)
            args.append(scalar.reshape(1)[0])
    dry = ElementwiseProgram((), dev.f16)
    regs = [dry.given("a", class_of(a.dtype, dev.f16)) for a in args]
    apply_op(dry, op, cls, out, regs)
    return dev.graph.elementwise(op, args, shape, out, cls)


def matmul(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    a, b = inputs
    shape = shapes.matmul_shape(a.shape, b.shape)
    dtype = np.result_type(a.dtype, b.dtype)
    wgpu_kernels.float_type(dev, dtype, "matmul")
    a, b = dev.graph.concrete(_cast(dev, a, dtype)), dev.graph.concrete(_cast(dev, b, dtype))
    if len(a.shape) == 1:
        a = a.view((1, *a.shape), (0, *a.strides), a.offset)
    if len(b.shape) == 1:
        b = b.view((*b.shape, 1), (*b.strides, 0), b.offset)
    batch = shapes.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = broadcast_view(a, (*batch, *a.shape[-2:]))
    b = broadcast_view(b, (*batch, *b.shape[-2:]))
    return dev.graph.matmul(a, b, shape, dtype)


def matmul_q8(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    x, weight, scale, x_scale, bias = inputs
    shape = matmul_q8_shape(x, weight, scale, x_scale, bias)
    wgpu_kernels.float_type(dev, x.dtype, kernel)
    f32 = np.dtype(np.float32)
    scale, x_scale = (dev.graph.concrete(_cast(dev, t, f32)) for t in (scale, x_scale))
    bias = None if bias is None else dev.graph.concrete(_cast(dev, bias, f32))
    out = dev.new_dense(shape, x.dtype)
    wgpu_kernels.matmul_q8(
        dev, dev.graph.concrete(x), dev.graph.concrete(weight), (scale, x_scale, bias), out
    )
    return out


def matmul_gguf(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    x, weight = inputs
    out = dev.new_dense(matmul_gguf_shape(kernel, x, weight), x.dtype)
    wgpu_kernels.matmul_gguf(
        dev, GGUF_KERNELS[kernel], dev.graph.concrete(x), dev.graph.concrete(weight), out
    )
    return out


def reduce(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    (x,) = inputs
    out_dtype = _probe(kernel, inputs, params)
    wgpu_kernels.float_type(dev, x.dtype, kernel)
    if out_dtype != (np.dtype(np.int64) if kernel == "argmax" else x.dtype):
        raise Unsupported(f"{kernel} of {x.dtype.name} gives {out_dtype.name}, which has no WGSL kernel")
    axis = params.get("axis")
    axes = tuple(range(len(x.shape))) if axis is None else tuple(axis)
    keep = bool(params.get("keepdims"))
    out_shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape) if keep or d not in axes)
    out = dev.new_dense(out_shape, out_dtype)
    wgpu_kernels.reduce_rows(
        dev, kernel, dev.graph.concrete(x), axes, out, float(params.get("correction", 0))
    )
    return out


def normalize(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    x = dev.graph.concrete(inputs[0])
    wgpu_kernels.float_type(dev, x.dtype, kernel)
    if kernel == "layer_norm":
        n = x.shape[-1] if x.shape else 1
        extras = []
        for t in inputs[1:3]:
            if t is not None and t.shape != (n,):
                raise Unsupported(f"layer_norm weight/bias of shape {t.shape} (not ({n},))")
            extras.append(None if t is None else dev.graph.concrete(_cast(dev, t, x.dtype)))
        out = dev.new_dense(x.shape, x.dtype)
        wgpu_kernels.normalize(dev, kernel, x, out, float(params["eps"]), *extras)
        return out
    axis = shapes.normalize_axis(int(params["axis"]), len(x.shape))
    perm = [d for d in range(len(x.shape)) if d != axis] + [axis]
    moved = x.view(tuple(x.shape[d] for d in perm), tuple(x.strides[d] for d in perm), x.offset)
    out = dev.new_dense(moved.shape, x.dtype)
    wgpu_kernels.normalize(dev, kernel, moved, out)
    return out.view(x.shape, tuple(out.strides[perm.index(d)] for d in range(len(x.shape))), 0)


def gather(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    ids, src = inputs
    if ids.dtype.name not in ("int32", "int64", "uint8"):
        raise Unsupported(f"embedding ids of dtype {ids.dtype.name}")
    if kernel == "embedding":
        if len(src.shape) != 2:
            raise ShapeError(f"embedding table must be 2-D (num_embeddings, dim), got shape {src.shape}")
        out = dev.new_dense((*ids.shape, src.shape[1]), src.dtype)
        wgpu_kernels.gather(dev, "gather", ids, src, out, src.shape[0])
        return out
    rows = int(params["num_embeddings"])
    if src.shape[:-1] != ids.shape:
        raise ShapeError(f"embedding_backward: grad {src.shape} does not match ids {ids.shape} + (dim,)")
    out = dev.new_dense((rows, src.shape[-1]), src.dtype)
    wgpu_kernels.gather(dev, "scatter", ids, src, out, rows)
    return out


def conv(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    geometry = (params["stride"], params["padding"], params["dilation"], params["groups"])
    if kernel == "conv":
        x, w, bias = inputs
        y_shape = shapes.conv_output_shape(x.shape, w.shape, *geometry)
        x_shape, w_shape, first, second = x.shape, w.shape, x, w
    elif kernel == "conv_backward_input":
        first, second = inputs
        bias, x_shape, w_shape, y_shape = None, tuple(params["input_shape"]), second.shape, first.shape
    else:
        first, second = inputs
        bias, x_shape, w_shape, y_shape = None, first.shape, tuple(params["weight_shape"]), second.shape
    dtype = first.dtype
    if second.dtype != dtype or (bias is not None and bias.dtype != dtype):
        raise Unsupported("conv operands of different dtypes")
    out_shape = {"conv": y_shape, "conv_backward_input": x_shape}.get(kernel, w_shape)
    out = dev.new_dense(tuple(out_shape), dtype)
    entry = {"conv": "forward", "conv_backward_input": "backward_input"}.get(kernel, "backward_weight")
    wgpu_kernels.conv(dev, entry, first, second, out, bias, x_shape, w_shape, y_shape, *geometry)
    return out


def attention(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    q, k, v, mask = inputs
    if (
        min(len(q.shape), len(k.shape), len(v.shape)) < 2
        or q.shape[-1] != k.shape[-1]
        or k.shape[-2] != v.shape[-2]
    ):
        raise ShapeError(f"attention shapes do not fit: q {q.shape}, k {k.shape}, v {v.shape}")
    if not q.dtype == k.dtype == v.dtype:
        raise Unsupported("attention on mixed dtypes")
    (length, e), source, ev = q.shape[-2:], k.shape[-2], v.shape[-1]
    masks = [mask.shape[:-2]] if mask is not None and len(mask.shape) >= 2 else []
    batch = shapes.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2], *masks)
    flat = math.prod(batch)

    def prepared(t: WgpuBuffer, rows: int, cols: int) -> WgpuBuffer:
        d = dev.dense(broadcast_view(dev.graph.concrete(t), (*batch, rows, cols)))
        return d.view((flat, rows, cols), (rows * cols * (flat > 1), cols, 1), d.offset)

    additive = None
    if mask is not None:
        view = broadcast_view(dev.graph.concrete(mask), (*batch, length, source))
        f32 = np.dtype(np.float32)
        if mask.dtype == np.bool_:
            lazy = dev.graph.elementwise(
                "where", [view, np.float32(0), np.float32(-np.inf)], view.shape, f32, "f"
            )
        else:
            lazy = _cast(dev, view, f32)
        additive = dev.dense(lazy)
    out = dev.new_dense((*batch, length, ev), q.dtype)
    scale = params.get("scale")
    factor = 1 / math.sqrt(e) if scale is None else float(scale)
    flat_out = out.view((flat, length, ev), (length * ev, ev, 1), 0)
    qs, ks, vs = prepared(q, length, e), prepared(k, source, e), prepared(v, source, ev)
    wgpu_kernels.attention(dev, qs, ks, vs, additive, flat_out, bool(params.get("is_causal")), factor)
    return out


def _layout(dev: WgpuDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> WgpuBuffer:
    x = inputs[0]
    if kernel == "copy":
        return dev.graph.elementwise("cast", [x], x.shape, x.dtype, class_of(x.dtype, dev.f16))
    if kernel == "reshape":
        return dev.view_or_copy(x, shapes.reshape_shape(math.prod(x.shape), x.shape, params["shape"]))
    if kernel == "index_backward":
        out = dev.allocate(tuple(params["shape"]), x.dtype)
        assert isinstance(out, WgpuBuffer)
        dev.write_view(getitem_view(out, tuple(params["index"])), dev.graph.concrete(x))
        return out
    if kernel == "concat":
        return _concat(dev, inputs, int(params["axis"]))
    x = dev.graph.concrete(x)
    if kernel == "transpose":
        axes = tuple(params["axes"])
        if sorted(axes) != list(range(len(x.shape))):
            raise ShapeError(f"transpose: axes {axes} are not a permutation of {len(x.shape)} axes")
        return x.view(tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes), x.offset)
    if kernel == "broadcast_to":
        target = tuple(params["shape"])
        if shapes.broadcast_shapes(x.shape, target) != target:
            raise ShapeError(f"cannot broadcast {x.shape} to {target}")
        return broadcast_view(x, target)
    if kernel == "getitem":
        return getitem_view(x, tuple(params["index"]))
    return _setitem(dev, x, inputs[1], tuple(params["index"]))


def _setitem(dev: WgpuDevice, x: WgpuBuffer, value: Any, index: tuple[object, ...]) -> WgpuBuffer:
    target = getitem_view(x, index)
    if isinstance(value, WgpuBuffer):
        value = dev.graph.concrete(value)
        while len(value.shape) > len(target.shape) and value.shape[0] == 1:
            value = value.view(value.shape[1:], value.strides[1:], value.offset)
        broadcast_view(value, target.shape)
        dry = ElementwiseProgram((), dev.f16)
        dry.convert(dry.given("v", class_of(value.dtype, dev.f16)), class_of(x.dtype, dev.f16))
        if value.storage is x.storage:
            value = dev.copy_dense(value)
    else:
        value = np.array(value, dtype=x.dtype)[()]
    dev.graph.before_write(x.storage)
    dev.write_view(target, value)
    return x


def _concat(dev: WgpuDevice, inputs: Sequence[Any], axis: int) -> WgpuBuffer:
    dtype = np.result_type(*(x.dtype for x in inputs))
    out_shape = shapes.concat_shape([t.shape for t in inputs], axis)
    dry = ElementwiseProgram((), dev.f16)
    for t in inputs:
        dry.convert(dry.given("v", class_of(t.dtype, dev.f16)), class_of(dtype, dev.f16))
    out = dev.new_dense(out_shape, dtype)
    for view, t in zip(concat_views(out, [t.shape[axis] for t in inputs], axis), inputs, strict=True):
        dev.write_view(view, dev.graph.concrete(t))
    return out


OPS: dict[str, Handler] = {
    "unary": elementwise,
    "binary": elementwise,
    "ternary": elementwise,
    "linalg": matmul,
    "quantized": matmul_q8,
    "gguf": matmul_gguf,
    "reduce": reduce,
    "normalize": normalize,
    "gather": gather,
    "conv": conv,
    "attention": attention,
    "layout": _layout,
}
