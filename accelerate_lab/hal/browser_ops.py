"""Kernel handlers of the browser devices: check shapes, choose dtypes as numpy does, and turn each
catalogue kernel into views (no browser work) or one ``run`` command for the browser's WGSL.

The browser receives views already broadcast or permuted and the output's shape and dtype, so all
numpy semantics are decided here, synchronously; a combination the browser's kernels lack raises
:class:`UnsupportedKernelError` before anything is sent. The float kernels take float32, or float16
where the adapter has ``shader-f16`` (the shaders' F16 variants, as on the ``wgpu`` device).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from accelerate_lab.errors import ShapeError, UnsupportedKernelError
from accelerate_lab.hal import shapes
from accelerate_lab.hal.cpu import CpuDevice
from accelerate_lab.hal.kernels import KERNELS, matmul_gguf_shape, matmul_q8_shape
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, broadcast_view, concat_views, getitem_view, row_major
from accelerate_lab.hal.wgpu_codegen import CLASS_OF
from accelerate_lab.hal.wgpu_elementwise import collapse
from accelerate_lab.hal.wgpu_shaders import library_ops

if TYPE_CHECKING:
    from accelerate_lab.hal.browser_device import BrowserProxyDevice

__all__ = ["BROWSER_KERNELS", "handle", "probe_dtype"]

Handler = Callable[["BrowserProxyDevice", str, Sequence[Any], Mapping[str, Any]], WgpuBuffer]
_COMPARE = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)
_PROBE = CpuDevice()


def _unsupported(message: str) -> UnsupportedKernelError:
    return UnsupportedKernelError(f"the browser device cannot run this: {message}")


def probe_dtype(kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> np.dtype[np.generic]:
    """The dtype numpy gives, from the cpu kernel on one-element stand-ins of the inputs."""
    samples = [np.ones((1,) * len(x.shape), x.dtype) if isinstance(x, WgpuBuffer) else x for x in inputs]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _PROBE.run(kernel, samples, params)
    except ImportError as error:
        raise _unsupported(f"the dtype of {kernel} needs {error.name}") from error
    assert isinstance(out, np.ndarray)
    dtype: np.dtype[np.generic] = out.dtype
    return dtype


def _cls(dev: BrowserProxyDevice, dtype: np.dtype[np.generic]) -> str:
    cls = CLASS_OF[dtype.name]
    if cls == "d" or (cls == "h" and not dev.f16):
        raise _unsupported(f"{dtype.name} tensors (no WGSL for them in this browser)")
    return "f" if cls == "h" else cls


def _float(dev: BrowserProxyDevice, kernel: str, *dtypes: np.dtype[np.generic]) -> np.dtype[np.generic]:
    """The one float dtype of a kernel's tensors that the browser's WGSL takes: float32, or float16
    where the adapter has shader-f16 (as ``wgpu_kernels.float_type``)."""
    if len(set(dtypes)) != 1 or not (dtypes[0] == _F32 or (dtypes[0] == _F16 and dev.f16)):
        names = " and ".join(sorted({d.name for d in dtypes}))
        raise _unsupported(f"{kernel} of {names} (float32, or float16 with shader-f16, all of one dtype)")
    return dtypes[0]


def _cast(dev: BrowserProxyDevice, x: WgpuBuffer, dtype: np.dtype[np.generic]) -> WgpuBuffer:
    """``x`` as ``dtype``: itself, or a dense converted copy."""
    return x if x.dtype == dtype else dev.submit_run("cast", x.shape, dtype, [x], {}, None)


def _convertible(src: str, dst: str) -> bool:
    return src == dst or (dst, f"from_{src}") in library_ops()


def elementwise(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    shape = shapes.broadcast_shapes(*(x.shape for x in inputs if isinstance(x, WgpuBuffer)))
    out = probe_dtype(kernel, inputs, params)
    if kernel in _COMPARE:
        compute = np.result_type(*(x.dtype if isinstance(x, WgpuBuffer) else x for x in inputs))
    else:
        compute = out
    op = "gelu_tanh" if kernel == "gelu" and params.get("approximate") == "tanh" else kernel
    cls = _cls(dev, compute)
    if kernel not in ("cast", "copy") and (cls, op) not in library_ops():
        raise _unsupported(f"{kernel} on {compute.name}")
    args: list[WgpuBuffer | tuple[float | int | bool, np.dtype[np.generic]]] = []
    for i, x in enumerate(inputs):
        if isinstance(x, WgpuBuffer):
            if not _convertible(_cls(dev, x.dtype), "b" if kernel == "where" and i == 0 else cls):
                raise _unsupported(f"{kernel}: no conversion from {x.dtype.name}")
            args.append(broadcast_view(x, shape))
        else:
            dtype = np.dtype(np.bool_) if kernel == "where" and i == 0 else compute
            args.append((np.array(x, dtype=dtype).item(), dtype))
    if not _convertible("b" if kernel in _COMPARE else cls, _cls(dev, out)):
        raise _unsupported(f"{kernel}: no conversion to {out.name}")
    return dev.submit_run(
        kernel, shape, out, args, dict(params), compute if kernel not in ("cast", "copy") else None
    )


def matmul(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    a, b = inputs
    shape = shapes.matmul_shape(a.shape, b.shape)
    dtype = _float(dev, kernel, np.result_type(a.dtype, b.dtype))  # numpy's, as the wgpu device
    a, b = _cast(dev, a, dtype), _cast(dev, b, dtype)
    if len(a.shape) == 1:
        a = a.view((1, *a.shape), (0, *a.strides), a.offset)
    if len(b.shape) == 1:
        b = b.view((*b.shape, 1), (*b.strides, 0), b.offset)
    batch = shapes.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    dims, (a4, b4) = _two_batch_axes(dev, [a, b], batch)
    out = dev.submit_run("matmul", (*dims, a.shape[-2], b.shape[-1]), dtype, [a4, b4], {}, None)
    return out.view(shape, row_major(shape), 0)


def _two_batch_axes(
    dev: BrowserProxyDevice, tensors: Sequence[WgpuBuffer], batch: tuple[int, ...]
) -> tuple[list[int], list[WgpuBuffer]]:
    """``tensors`` broadcast to ``(*batch, rows, columns)`` as ``(outer, inner, rows, columns)`` views:
    batch axes merged where every view allows it, dense copies where more than two would be left."""
    views = [broadcast_view(t, (*batch, *t.shape[-2:])) for t in tensors]
    dims, strides = collapse(batch, [t.strides[:-2] for t in views])
    if len(dims) > 2:
        views = [dev.dense_copy(t) for t in views]
        dims, strides = [math.prod(batch)], [[t.shape[-2] * t.shape[-1]] for t in views]
    pad = 2 - len(dims)
    dims, strides = [1] * pad + dims, [[0] * pad + s for s in strides]
    pairs = zip(views, strides, strict=True)
    return dims, [t.view((*dims, *t.shape[-2:]), (*s, *t.strides[-2:]), t.offset) for t, s in pairs]


def matmul_q8(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    x, weight, scale, x_scale, bias = inputs
    shape = matmul_q8_shape(x, weight, scale, x_scale, bias)
    dtype = _float(dev, kernel, x.dtype)
    vectors = [None if t is None else _cast(dev, t, _F32) for t in (scale, x_scale, bias)]
    return dev.submit_run(kernel, shape, dtype, [x, weight, *vectors], {}, None)


def matmul_gguf(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    return dev.submit_run(kernel, matmul_gguf_shape(kernel, *inputs), _F32, list(inputs), {}, None)


def reduce(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    (x,) = inputs
    out_dtype = probe_dtype(kernel, inputs, params)
    dtype = _float(dev, kernel, x.dtype)
    if out_dtype != (np.dtype(np.int64) if kernel == "argmax" else dtype):
        raise _unsupported(f"{kernel} of {x.dtype.name} gives {out_dtype.name}, which has no WGSL kernel")
    axis = params.get("axis")
    axes = tuple(range(len(x.shape))) if axis is None else tuple(axis)
    if any(x.shape[d] == 0 for d in axes) or math.prod(x.shape) == 0:
        raise _unsupported(f"{kernel} of an empty tensor")
    keep = bool(params.get("keepdims"))
    out_shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape) if keep or d not in axes)
    perm = [d for d in range(len(x.shape)) if d not in axes] + list(axes)
    moved = x.view(tuple(x.shape[d] for d in perm), tuple(x.strides[d] for d in perm), x.offset)
    extra = {"reduce_axes": len(axes), "correction": float(params.get("correction", 0))}
    rows = tuple(x.shape[d] for d in perm[: len(perm) - len(axes)])
    out = dev.submit_run(kernel, rows, out_dtype, [moved], extra, None)
    return out.view(out_shape, row_major(out_shape), 0)


def normalize(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    x = inputs[0]
    dtype = _float(dev, kernel, x.dtype)
    if math.prod(x.shape) == 0 or not x.shape:
        raise _unsupported(f"{kernel} of an empty or 0-d tensor")
    if kernel == "layer_norm":
        n = x.shape[-1]
        for t in inputs[1:3]:
            if t is not None and t.shape != (n,):
                raise _unsupported(f"layer_norm weight/bias of shape {t.shape} (not ({n},))")
            if t is not None:
                _float(dev, kernel, t.dtype)  # the browser reads it as x's dtype
        return dev.submit_run(kernel, x.shape, dtype, list(inputs[:3]), {"eps": float(params["eps"])}, None)
    axis = shapes.normalize_axis(int(params["axis"]), len(x.shape))
    perm = [d for d in range(len(x.shape)) if d != axis] + [axis]
    moved = x.view(tuple(x.shape[d] for d in perm), tuple(x.strides[d] for d in perm), x.offset)
    out = dev.submit_run(kernel, moved.shape, dtype, [moved], {}, None)
    return out.view(x.shape, tuple(out.strides[perm.index(d)] for d in range(len(x.shape))), 0)


def gather(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    ids, src = inputs
    if ids.dtype.name not in ("int32", "int64", "uint8"):
        raise _unsupported(f"{kernel} with ids {ids.dtype.name}")
    dtype = _float(dev, kernel, src.dtype)
    if kernel == "embedding":
        if len(src.shape) != 2:
            raise ShapeError(f"embedding table must be 2-D (num_embeddings, dim), got shape {src.shape}")
        return dev.submit_run(kernel, (*ids.shape, src.shape[1]), dtype, [ids, src], {}, None)
    if src.shape[:-1] != ids.shape:
        raise ShapeError(f"embedding_backward: grad {src.shape} does not match ids {ids.shape} + (dim,)")
    rows = int(params["num_embeddings"])
    return dev.submit_run(kernel, (rows, src.shape[-1]), dtype, [ids, src], {"num_embeddings": rows}, None)


def conv(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    geometry = (params["stride"], params["padding"], params["dilation"], params["groups"])
    if len(geometry[0]) not in (1, 2):
        raise _unsupported(f"{kernel}: 1-D and 2-D convolutions only")
    dtype = _float(dev, kernel, *(t.dtype for t in inputs if t is not None))
    if kernel == "conv":
        out_shape = shapes.conv_output_shape(inputs[0].shape, inputs[1].shape, *geometry)
    elif kernel == "conv_backward_input":
        out_shape = tuple(params["input_shape"])
    else:
        out_shape = tuple(params["weight_shape"])
    wire = {
        "stride": list(geometry[0]),
        "padding": list(geometry[1]),
        "dilation": list(geometry[2]),
        "groups": geometry[3],
    }
    return dev.submit_run(kernel, out_shape, dtype, list(inputs), wire, None)


def attention(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    q, k, v, mask = inputs
    if (
        min(len(q.shape), len(k.shape), len(v.shape)) < 2
        or q.shape[-1] != k.shape[-1]
        or k.shape[-2] != v.shape[-2]
    ):
        raise ShapeError(f"attention shapes do not fit: q {q.shape}, k {k.shape}, v {v.shape}")
    dtype = _float(dev, kernel, q.dtype, k.dtype, v.dtype)
    if max(q.shape[-1], v.shape[-1]) > 512:
        raise _unsupported("attention with head sizes above 512")
    (length, e), source, ev = q.shape[-2:], k.shape[-2], v.shape[-1]
    masks = [mask.shape[:-2]] if mask is not None and len(mask.shape) >= 2 else []
    batch = shapes.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2], *masks)
    operands = [q, k, v]
    if mask is not None:
        if mask.dtype != np.bool_:
            _float(dev, "an attention mask", mask.dtype)  # additive: read as float32
        operands.append(broadcast_view(mask, (*batch, length, source)))
    # strided views (heads of a fused projection, a broadcast padding mask) go as they are
    dims, views = _two_batch_axes(dev, operands, batch)
    scale = params.get("scale")
    wire = {
        "is_causal": bool(params.get("is_causal")),
        "scale": 1 / math.sqrt(e) if scale is None else float(scale),
    }
    out = dev.submit_run(kernel, (*dims, length, ev), dtype, [*views, None][:4], wire, None)
    return out.view((*batch, length, ev), row_major((*batch, length, ev)), 0)


def layout(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    x: WgpuBuffer = inputs[0]
    if kernel == "copy":
        return elementwise(dev, kernel, inputs, params)
    if kernel == "reshape":
        shape = shapes.reshape_shape(math.prod(x.shape), x.shape, params["shape"])
        dense = x if x.is_dense() else dev.dense_copy(x)
        return dense.view(shape, row_major(shape), dense.offset)
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
    if kernel == "setitem":
        dev.write_view(getitem_view(x, tuple(params["index"])), inputs[1])
        return x
    if kernel == "index_backward":
        out = dev.new_zeros(tuple(params["shape"]), x.dtype)
        dev.write_view(getitem_view(out, tuple(params["index"])), x)
        return out
    return _concat(dev, inputs, int(params["axis"]))


def _concat(dev: BrowserProxyDevice, inputs: Sequence[Any], axis: int) -> WgpuBuffer:
    dtype = np.result_type(*(x.dtype for x in inputs))
    _cls(dev, dtype)
    out = dev.new_zeros(shapes.concat_shape([t.shape for t in inputs], axis), dtype)
    for view, t in zip(concat_views(out, [t.shape[axis] for t in inputs], axis), inputs, strict=True):
        dev.write_view(view, t)
    return out


_FAMILIES: dict[str, Handler] = {
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
    "layout": layout,
}

BROWSER_KERNELS: frozenset[str] = frozenset(
    name for name, spec in KERNELS.items() if spec.family in _FAMILIES
)


def handle(
    dev: BrowserProxyDevice, kernel: str, inputs: Sequence[Any], params: Mapping[str, Any]
) -> WgpuBuffer:
    """Run ``kernel`` on the browser device (views here, the rest as commands)."""
    spec = KERNELS.get(kernel)
    if spec is None or spec.family not in _FAMILIES:
        raise _unsupported(f"no kernel {kernel!r}")
    return _FAMILIES[spec.family](dev, kernel, inputs, params)
