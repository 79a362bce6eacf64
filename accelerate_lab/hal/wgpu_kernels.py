"""The non-elementwise kernels of the ``wgpu`` device: matmul, row reductions and normalisations,
embedding, convolution and attention. Each prepares dense (or strided, for matmul) operands, packs
the uniform its shader header documents, and records one dispatch; past the adapter's binding limit,
one per piece of the work (:mod:`accelerate_lab.hal.wgpu_tiling`): matmuls by blocks of batches,
rows and columns, row kernels by rows, attention and convolutions by batch, gather by ids."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelerate_lab.hal import wgpu_shaders
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, row_major, span
from accelerate_lab.hal.wgpu_codegen import ElementwiseProgram, Reg, Unsupported, class_of, library
from accelerate_lab.hal.wgpu_elementwise import collapse
from accelerate_lab.hal.wgpu_runtime import Binding, flat_workgroups, pack_words
from accelerate_lab.hal.wgpu_tiling import Extent, aligned_quantum, bind_window, fit_box, pieces

if TYPE_CHECKING:
    from accelerate_lab.hal.wgpu_device import WgpuDevice

__all__ = [
    "attention",
    "conv",
    "gather",
    "gguf_lanes",
    "matmul",
    "matmul_aligned_workgroup_bytes",
    "matmul_dispatches",
    "matmul_gguf",
    "matmul_q8",
    "matmul_workgroup_bytes",
    "normalize",
    "reduce_rows",
]

_FLOAT = {"float32": "f32", "float16": "f16"}
_REDUCE_OPS = {"sum": 0, "mean": 1, "max": 2, "min": 3, "var": 4, "argmax": 5}
_NORMALIZE_OPS = {"softmax": 0, "log_softmax": 1, "layer_norm": 2}

# declarations a kernel file shares with another (composed with it; matmul_blocks.wgsl is the browser's)
_SHARED = {"matmul.wgsl": ("matmul_bindings.wgsl",)}

matmul_dispatches: Counter[str] = Counter()
"""Matmul dispatches recorded per shader file (which kernel ran), over all devices of the process."""


@functools.cache
def kernel_source(
    name: str, flags: tuple[str, ...], aliases: tuple[tuple[str, str], ...], helpers: tuple[str, ...]
) -> str:
    """A shader family prepared for the adapter, with the helper files it needs prepended."""
    parts = [wgpu_shaders.prepare(wgpu_shaders.load(name), flags, dict(aliases))]
    for helper in helpers:
        parts.append(
            library(flags)
            if helper == "elementwise_ops.wgsl"
            else wgpu_shaders.prepare(wgpu_shaders.load(helper), flags)
        )
    return wgpu_shaders.compose(*parts)


def float_type(dev: WgpuDevice, dtype: np.dtype[np.generic], kernel: str) -> str:
    """The WGSL storage type of a float tensor; ``Unsupported`` for other dtypes (the cpu runs them)."""
    wgsl = _FLOAT.get(dtype.name)
    if wgsl is None or (wgsl == "f16" and not dev.f16):
        raise Unsupported(f"{kernel} on {dtype.name} has no WGSL kernel on this adapter")
    return wgsl


def _flags(wgsl: str) -> tuple[str, ...]:
    return ("F16",) if wgsl == "f16" else ()


def _reduce_flags(dev: WgpuDevice, wgsl: str) -> tuple[str, ...]:
    """Flags of the kernels built on workgroup_reduce.wgsl: SUBGROUPS picks its subgroup variant."""
    return (*_flags(wgsl), *(("SUBGROUPS",) if dev.runtime.subgroups else ()))


def _bind(dev: WgpuDevice, buf: WgpuBuffer) -> tuple[Binding, int]:
    """Bind a view's span; returns the binding and the view's offset inside it (in elements)."""
    assert buf.storage is not None
    lo, hi = span(buf.shape, buf.strides, buf.offset)
    binding, first = bind_window(dev.runtime, buf.storage, lo, max(hi, lo), buf.itemsize)
    return binding, buf.offset - first


Written = list[tuple[WgpuBuffer, WgpuBuffer]]


def _bind0(dev: WgpuDevice, buf: WgpuBuffer, written: Written | None = None) -> Binding:
    """Bind a dense buffer so that its first element is element 0 of the binding. An unaligned start
    goes through a copy; for an output (``written`` given), a fresh buffer that :func:`_copy_back`
    copies into ``buf`` after the dispatch."""
    binding, rel = _bind(dev, buf)
    if rel and written is None:
        binding, rel = _bind(dev, dev.copy_dense(buf))
    elif rel and written is not None:
        fresh = dev.new_dense(buf.shape, buf.dtype)
        written.append((buf, fresh))
        binding, rel = _bind(dev, fresh)
    assert rel == 0
    return binding


def _copy_back(dev: WgpuDevice, written: Written) -> None:
    for target, fresh in written:
        dev.write_view(target, fresh)


def _units(
    dev: WgpuDevice, count: int, tensors: Sequence[tuple[WgpuBuffer, int, bool]], unit: str
) -> list[tuple[int, int]]:
    """``(first, count)`` of the pieces of ``count`` units (rows, batches, ...) in which each dense
    tensor's units fit one binding. ``tensors``: each with its elements per unit and whether it is
    bound from its first element (then pieces start where its offset stays aligned, when they can)."""
    if count == 0:
        return []
    extents: list[Extent] = [(t.itemsize, [per], per - 1) for t, per, _ in tensors]
    quantum = math.lcm(*(aligned_quantum(dev.runtime, per * t.itemsize) for t, per, zero in tensors if zero))
    (box,) = fit_box(dev.runtime, extents, [count], [quantum], unit)
    return [(origin[0], shape[0]) for origin, shape in pieces([count], [box])]


def _uniform(values: Sequence[int | float]) -> bytes:
    return pack_words(values, -(-len(values) // 4) * 4)


def _batch_axes(
    shape: Sequence[int], a: Sequence[int], b: Sequence[int]
) -> tuple[list[int], list[list[int]]] | None:
    """Batch axes merged where both operands allow; None if more than two remain."""
    dims, (sa, sb) = collapse(shape, [a, b])
    if len(dims) > 2:
        return None
    while len(dims) < 2:
        dims.insert(0, 1)
        sa.insert(0, 0)
        sb.insert(0, 0)
    return dims, [sa, sb]


def matmul_workgroup_bytes(threads: int, per_thread: int, step: int) -> int:
    """Workgroup memory of matmul.wgsl for a tile config: two K-slices of A and of B, rows padded by 4."""
    return 16 * step * (threads * per_thread + 4)


def _check_tile(dev: WgpuDevice, threads: int, per_thread: int, step: int) -> None:
    """The constraints on the override constants that matmul.wgsl's header states."""
    fits = (
        per_thread in (4, 8)
        and threads % per_thread == 0
        and (threads * threads) % (4 * step) == 0
        and (step * per_thread) % threads == 0
        and step * per_thread <= 8 * threads
    )
    if not fits:
        raise ValueError(f"matmul tile config {(threads, per_thread, step)} breaks matmul.wgsl's constraints")
    limit = dev.runtime.profile.limits.get("max-compute-workgroup-storage-size", 16384)
    if matmul_workgroup_bytes(threads, per_thread, step) > limit:
        raise ValueError(
            f"matmul tile config {(threads, per_thread, step)} needs more workgroup memory than {limit} bytes"
        )


def matmul_aligned_workgroup_bytes(rows: int, cols: int, step: int) -> int:
    """Workgroup memory of matmul_aligned.wgsl for a block tile: two K-slices of A and B, rows padded by 4."""
    return 32 * step * (rows // 4 + cols // 4 + 2)


def _check_aligned_tile(dev: WgpuDevice, rows: int, cols: int, step: int) -> None:
    """The constraints on the block tile and options that matmul_aligned.wgsl's header states."""
    threads = rows * cols // 64
    fits = (
        rows % 8 == 0
        and cols % 8 == 0
        and step % 4 == 0
        and threads <= dev.runtime.profile.limits.get("max-compute-invocations-per-workgroup", 256)
        and all(side * step in (4 * threads, 8 * threads, 16 * threads) for side in (rows, cols))
    )
    options = dev.runtime.matmul_aligned_options
    unroll, group = options.get("UNROLL", 1), options.get("GROUP", 1)
    known = {"UNROLL", "GROUP", "TRUSTED"}
    fits = fits and set(options) <= known and unroll in (1, 4, 8) and step % unroll == 0
    if not fits or group < 1:
        raise ValueError(
            f"aligned matmul tile {(rows, cols, step)} {options} breaks matmul_aligned.wgsl's constraints"
        )
    limit = dev.runtime.profile.limits.get("max-compute-workgroup-storage-size", 16384)
    if matmul_aligned_workgroup_bytes(rows, cols, step) > limit:
        raise ValueError(
            f"aligned matmul tile {(rows, cols, step)} needs more workgroup memory than {limit} bytes"
        )


def _aligned_b(
    dev: WgpuDevice,
    dtypes: tuple[str, str],
    sizes: tuple[int, int, int],
    a_words: Sequence[int],
    b_words: Sequence[int],
    c_words: Sequence[int],
) -> bool | None:
    """Whether matmul_aligned.wgsl takes this float32 product (None: no), and if so whether B is walked
    along K (a transposed weight). ``a_words``/``b_words``: offset, row and column strides, batch
    strides of A and B, as in the uniform, ``c_words`` C's offset and row stride; every row
    contiguous and everything in whole vec4s."""
    config = dev.runtime.matmul_aligned_config
    if config is None or dtypes != ("float32", "float32"):
        return None
    rows, cols, step = config
    _check_aligned_tile(dev, rows, cols, step)
    m, n, k = sizes
    if (
        m % rows
        or n % cols
        or k % step
        or a_words[2] != 1
        or any(x % 4 for x in (*a_words[:2], *a_words[3:], b_words[0], *b_words[3:], *c_words))
    ):
        return None
    if b_words[2] == 1 and b_words[1] % 4 == 0:
        return False
    if b_words[1] == 1 and b_words[2] % 4 == 0:
        return True
    return None


def _matmul_kernel(
    dev: WgpuDevice, transposed: bool | None
) -> tuple[str, tuple[int, int], dict[str, int | float]]:
    """Shader, block tile (rows, columns) and override constants: matmul_aligned.wgsl, with B walked
    along K or not, or (``transposed`` None) matmul.wgsl."""
    if transposed is None:
        threads, per_thread, step = dev.runtime.matmul_config
        _check_tile(dev, threads, per_thread, step)
        tile = threads * per_thread
        return "matmul.wgsl", (tile, tile), {"TS": threads, "R": per_thread, "BK": step}
    assert dev.runtime.matmul_aligned_config is not None
    rows, cols, step = dev.runtime.matmul_aligned_config
    constants: dict[str, int | float] = {"TX": cols // 8, "TY": rows // 8, "BK": step, "BT": int(transposed)}
    constants.update((k, v) for k, v in dev.runtime.matmul_aligned_options.items() if k != "TRUSTED")
    return "matmul_aligned.wgsl", (rows, cols), constants


def matmul(
    dev: WgpuDevice,
    a: WgpuBuffer,
    b: WgpuBuffer,
    out: WgpuBuffer,
    epilogue: ElementwiseProgram | None,
    result: Reg | None,
) -> None:
    """``out = epilogue(a @ b)``; ``a`` is ``(*batch, M, K)``, ``b`` ``(*batch, K, N)`` (same batch shape)."""
    wgsl = float_type(dev, a.dtype, "matmul")
    batch_shape = a.shape[:-2]
    merged = _batch_axes(batch_shape, a.strides[:-2], b.strides[:-2])
    if merged is None:
        a, b = dev.copy_dense(a), dev.copy_dense(b)
        merged = _batch_axes(batch_shape, a.strides[:-2], b.strides[:-2])
        assert merged is not None
    batches, (sa, sb) = merged
    a = a.view((*batches, *a.shape[-2:]), (*sa, *a.strides[-2:]), a.offset)
    b = b.view((*batches, *b.shape[-2:]), (*sb, *b.strides[-2:]), b.offset)
    _matmul_pieces(dev, wgsl, a, b, out, epilogue, result)


def matmul_q8(
    dev: WgpuDevice,
    x: WgpuBuffer,
    weight: WgpuBuffer,
    vectors: tuple[WgpuBuffer, WgpuBuffer, WgpuBuffer | None],
    out: WgpuBuffer,
) -> None:
    """``out = x @ W.T + bias`` (the catalogue's ``matmul_q8``) with matmul.wgsl's Q8 flag.

    ``x`` is a ``(M, K)`` view; ``weight`` the dense packed ``(N, ceil(K / 4))`` int32 bytes, which the
    kernel reads as the ``(K, N)`` operand B with byte strides (1 along K, the padded row along N);
    ``vectors`` are ``scale``, ``x_scale`` and ``bias`` (float32).
    """
    wgsl = float_type(dev, x.dtype, "matmul_q8")
    scale, x_scale, bias = vectors
    weight = dev.dense(weight)
    (m, k), n = x.shape, weight.shape[0]
    a = x.view((1, 1, m, k), (0, 0, *x.strides), x.offset)
    packed = (0, 0, 1, 4 * weight.shape[1])
    b = WgpuBuffer((1, 1, k, n), np.dtype(np.int8), weight.storage, 4 * weight.offset, packed)
    q8 = (dev.dense(x_scale), dev.dense(scale), None if bias is None else dev.dense(bias))
    _matmul_pieces(dev, wgsl, a, b, out, None, None, q8)


def gguf_lanes(dev: WgpuDevice) -> int:
    """Threads per output column of quant_gguf.wgsl: 1 on software adapters (barriers are costly), else 32."""
    return 1 if dev.runtime.profile.is_software else 32


def matmul_gguf(dev: WgpuDevice, qtype: str, x: WgpuBuffer, weight: WgpuBuffer, out: WgpuBuffer) -> None:
    """``out = x @ W.T`` with quant_gguf.wgsl: ``x`` a ``(M, K)`` float32 view, ``weight`` the ``(N, words)``
    int32 rows of ``qtype`` blocks (read packed), ``out`` dense ``(M, N)``; by blocks of rows of ``x``
    and of ``weight`` that fit the binding limit."""
    (m, k), (n, row) = x.shape, weight.shape
    x, weight = dev.dense(x), dev.dense(weight)
    source = kernel_source("quant_gguf.wgsl", ("Q8_0",) if qtype == "Q8_0" else (), (), ())
    lanes = gguf_lanes(dev)
    constants = {"WG": dev.workgroup, "LANES": lanes}
    pipeline = dev.runtime.pipeline(source, ("uniform", "read", "read", "write"), constants)
    extents: list[Extent] = [(4, [k, 0], k - 1), (4, [0, row], row - 1), (4, [n, 1], 0)]
    quanta = [1, aligned_quantum(dev.runtime, 4 * row)]
    box = fit_box(dev.runtime, extents, [m, n], quanta, "row of the input or of the weight")
    for (r0, c0), (rows, cols) in pieces([m, n], box):
        x_bind, x_off = _bind(dev, x.view((rows, k), (k, 1), x.offset + r0 * k))
        c_bind, c_off = _bind(dev, out.view((rows, cols), (n, 1), out.offset + r0 * n + c0))
        w_bind = _bind0(dev, weight.view((cols, row), (row, 1), weight.offset + c0 * row))
        groups = -(-rows // 4)
        words = [rows, cols, k, row, x_off, groups, c_off, n]
        workgroups = -(-cols // (dev.workgroup // lanes)) * groups
        dev.runtime.dispatch(pipeline, [x_bind, w_bind, c_bind], pack_words(words, 8), workgroups)


Q8Vectors = tuple[WgpuBuffer, WgpuBuffer, WgpuBuffer | None]


def _matmul_pieces(
    dev: WgpuDevice,
    wgsl: str,
    a: WgpuBuffer,
    b: WgpuBuffer,
    out: WgpuBuffer,
    epilogue: ElementwiseProgram | None,
    result: Reg | None,
    q8: Q8Vectors | None = None,
) -> None:
    """``out`` (dense) ``= epilogue(a @ b)`` for ``a`` ``(outer, inner, M, K)`` and ``b`` ``(outer,
    inner, K, N)`` views, one dispatch per block of batches, rows and columns that fits the binding
    limit (tile-sized blocks when cut). ``q8``: ``b`` is packed int8 bytes and these its input scales,
    output scales and bias. C's batches must stay evenly spaced in a block: a block of several
    batches spans all rows, and one of several outer batches all inner ones."""
    outer, inner, m, k = a.shape
    n = b.shape[3]
    a, b = _along_k(dev, a, 3), _along_k(dev, b, 2)
    dims = [outer, inner, m, n]
    c = out.view(tuple(dims), row_major(dims), out.offset)
    ep = epilogue.operands if epilogue else []
    columns = [v.view((n,), (v.strides[-1] if v.strides else 0,), v.offset) for v in ep]
    columns += [v for v in (q8 or ())[1:] if v is not None]
    extents: list[Extent] = [
        (a.itemsize, [*a.strides[:3], 0], (k - 1) * abs(a.strides[3])),
        (b.itemsize, [*b.strides[:2], 0, b.strides[3]], (k - 1) * abs(b.strides[2])),
        (c.itemsize, c.strides, 0),
        *((v.itemsize, [0, 0, 0, v.strides[0]], 0) for v in columns),
    ]
    tile = math.prod(dev.runtime.matmul_config[:2])
    rows, cols = dev.runtime.matmul_aligned_config[:2] if dev.runtime.matmul_aligned_config else (1, 1)
    quanta = [1, 1, math.lcm(tile, rows), math.lcm(tile, cols)]
    box = fit_box(dev.runtime, extents, dims, quanta, "matmul output (a row of A and a column of B)")
    if box[1] < inner or box[2] < m:
        box[0] = 1
    if box[2] < m:
        box[1] = 1
    for origin, shape in pieces(dims, box):
        o, i, r, j = origin
        a_piece = a.view(
            (*shape[:3], k), a.strides, a.offset + o * a.strides[0] + i * a.strides[1] + r * a.strides[2]
        )
        b_piece = b.view(
            (*shape[:2], k, shape[3]),
            b.strides,
            b.offset + o * b.strides[0] + i * b.strides[1] + j * b.strides[3],
        )
        c_piece = c.view(
            tuple(shape), c.strides, c.offset + sum(x * s for x, s in zip(origin, c.strides, strict=True))
        )
        sliced = [v.view((shape[3],), v.strides, v.offset + j * v.strides[0]) for v in columns]
        _dispatch_matmul(dev, wgsl, a_piece, b_piece, c_piece, epilogue, result, sliced, q8)


def _along_k(dev: WgpuDevice, x: WgpuBuffer, k_axis: int) -> WgpuBuffer:
    """A matmul operand ``x`` (``(outer, inner, rows, columns)``) as is when it fits one binding or is
    contiguous along K (so its blocks of rows of A or columns of B bind as compact windows), else a
    copy laid out that way (B then reads as a transposed weight)."""
    other = 5 - k_axis
    lo, hi = span(x.shape, x.strides, x.offset)
    limit = dev.runtime.profile.max_binding - 2 * dev.runtime.profile.storage_align
    if (hi - lo + 1) * x.itemsize <= limit or (
        x.strides[k_axis] == 1 and x.strides[other] >= x.shape[k_axis]
    ):
        return x
    order = (0, 1, other, k_axis)
    moved = dev.copy_dense(
        x.view(tuple(x.shape[d] for d in order), tuple(x.strides[d] for d in order), x.offset)
    )
    return moved.view(x.shape, tuple(moved.strides[order.index(d)] for d in range(4)), moved.offset)


def _dispatch_matmul(
    dev: WgpuDevice,
    wgsl: str,
    a: WgpuBuffer,
    b: WgpuBuffer,
    c: WgpuBuffer,
    epilogue: ElementwiseProgram | None,
    result: Reg | None,
    columns: Sequence[WgpuBuffer],
    q8: Q8Vectors | None,
) -> None:
    """One matmul dispatch, of matmul_aligned.wgsl when the operands allow, else of matmul.wgsl: ``a``,
    ``b`` and ``c`` ``(outer, inner, rows, columns)`` views; ``columns`` the epilogue's operands, then
    with ``q8`` the output scales and bias, each a vector along N."""
    outer, inner, m, k = a.shape
    n = b.shape[3]
    a_bind, a_off = _bind(dev, a)
    b_bind, b_off = _bind(dev, b)
    c_bind, c_off = _bind(dev, c)
    a_words = [a_off, a.strides[2], a.strides[3], a.strides[0], a.strides[1]]
    b_words = [b_off, b.strides[2], b.strides[3], b.strides[0], b.strides[1]]
    flags = ("F16",) if wgsl == "f16" or (epilogue is not None and epilogue.uses_f16) else ()
    transposed = None
    if q8 is None and not flags:
        dtypes = (a.dtype.name, c.dtype.name)
        transposed = _aligned_b(dev, dtypes, (m, n, k), a_words, b_words, (c_off, c.strides[2]))
    shader, (rows, cols), constants = _matmul_kernel(dev, transposed)
    tiles_m, tiles_n = -(-m // rows), -(-n // cols)
    scalars = epilogue.scalar_words if epilogue else []
    words = [m, n, k, tiles_n, tiles_m, inner, *a_words, c_off]
    words += [*scalars, *([0] * (16 - len(scalars)))]
    words += [*b_words, c.strides[2], outer * inner, int(q8 is not None and q8[2] is not None)]
    bindings = [a_bind, b_bind, c_bind]
    if q8 is not None:
        flags = (*flags, "Q8")
        bindings.append(_bind0(dev, q8[0]))
        bindings += [_bind0(dev, v) for v in columns]
        if q8[2] is None:
            bindings.append(bindings[-1])
    else:
        for view in columns:
            binding, rel = _bind(dev, view)
            bindings.append(binding)
            words += [rel, view.strides[0]]
    body = (
        "\n".join([*epilogue.lines, f"    return {result.name};"]) if epilogue and result else "    return x;"
    )
    template = wgpu_shaders.prepare(
        wgpu_shaders.load(shader),
        flags,
        {"IN": wgsl, "OUT": wgsl},
        {"EPILOGUE": body, "BINDINGS": epilogue.bindings(4) if epilogue else ""},
    )
    layout = ("uniform", "read", "read", "write", *(["read"] * (len(bindings) - 3)))
    trusted = transposed is not None and bool(dev.runtime.matmul_aligned_options.get("TRUSTED"))
    shared = [wgpu_shaders.prepare(wgpu_shaders.load(name), flags) for name in _SHARED.get(shader, ())]
    pipeline = dev.runtime.pipeline(
        wgpu_shaders.compose(template, *shared, library(flags)), layout, constants, trusted=trusted
    )
    matmul_dispatches[shader] += 1
    dev.runtime.dispatch(pipeline, bindings, pack_words(words, 64), tiles_m * tiles_n * outer * inner)


def _rows(
    dev: WgpuDevice,
    x: WgpuBuffer,
    kernel: str,
    entry: str,
    op: int,
    out: WgpuBuffer,
    n: int,
    extra: float,
    weight: WgpuBuffer | None = None,
    bias: WgpuBuffer | None = None,
) -> None:
    wgsl = float_type(dev, x.dtype, kernel)
    out_type = "u32" if kernel == "argmax" else wgsl
    x = dev.dense(x)
    rows = x.size // n if n else out.size
    per_out = out.size // rows if rows else 0
    vectors = [_bind(dev, dev.dense(t)) if t is not None else None for t in (weight, bias)]
    source = kernel_source(
        "rows.wgsl",
        _reduce_flags(dev, wgsl),
        (("IN", wgsl), ("OUT", out_type)),
        ("workgroup_reduce.wgsl", "elementwise_ops.wgsl"),
    )
    layout = ("uniform", "read", "write", *(["read"] * (2 if entry == "normalize" else 0)))
    pipeline = dev.runtime.pipeline(source, layout, {"WG": dev.workgroup, "OP": op}, entry)
    for first, count in _units(dev, rows, [(x, n, False), (out, per_out, True)], "row"):
        x_bind, x_off = _bind(dev, x.view((count * n,), (1,), x.offset + first * n))
        written: Written = []
        y = out.view((count * per_out,), (1,), out.offset + first * per_out)
        bindings = [x_bind, _bind0(dev, y, written)]
        words = [count, n, x_off, 0, 0, int(weight is not None), int(bias is not None), float(extra)]
        if entry == "normalize":
            for i, found in enumerate(vectors):
                binding, words[3 + i] = found or (x_bind, 0)
                bindings.append(binding)
        dev.runtime.dispatch(pipeline, bindings, _uniform(words), count)
        _copy_back(dev, written)


def reduce_rows(
    dev: WgpuDevice, kernel: str, x: WgpuBuffer, axes: tuple[int, ...], out: WgpuBuffer, correction: float
) -> None:
    """Reduce the ``axes`` of ``x`` into the dense ``out`` (kept axes in order)."""
    kept = [d for d in range(len(x.shape)) if d not in axes]
    moved = x.view(
        tuple(x.shape[d] for d in (*kept, *axes)), tuple(x.strides[d] for d in (*kept, *axes)), x.offset
    )
    n = math.prod(x.shape[d] for d in axes)
    chunks = _row_chunks(dev, kernel, x.itemsize, n)
    if chunks > 1:  # each row past the binding limit: reduce equal chunks of it, then their results
        dense = dev.dense(moved)
        rows = dense.size // n
        partial = dev.new_dense((rows, chunks), x.dtype)
        pieces_view = dense.view((rows * chunks, n // chunks), (n // chunks, 1), dense.offset)
        _rows(dev, pieces_view, kernel, "reduce", _REDUCE_OPS[kernel], partial, n // chunks, correction)
        moved, n = partial, chunks
    _rows(dev, moved, kernel, "reduce", _REDUCE_OPS[kernel], out, n, correction)


def _row_chunks(dev: WgpuDevice, kernel: str, itemsize: int, n: int) -> int:
    """Into how many equal chunks a row of ``n`` values is cut so that each fits one binding: 1 when it
    fits already, or for a reduction that chunks do not compose (var, argmax), or no divisor serves."""
    limit = dev.runtime.profile.max_binding - 2 * dev.runtime.profile.storage_align
    if n * itemsize <= limit or kernel not in ("sum", "mean", "max", "min"):
        return 1
    fewest = -(-n * itemsize // limit)
    return next((p for p in range(fewest, 64 * fewest) if n % p == 0), 1)


def normalize(
    dev: WgpuDevice,
    kernel: str,
    x: WgpuBuffer,
    out: WgpuBuffer,
    eps: float = 0.0,
    weight: WgpuBuffer | None = None,
    bias: WgpuBuffer | None = None,
) -> None:
    """softmax / log_softmax / layer_norm over the last axis of ``x`` into the dense ``out``."""
    _rows(
        dev,
        x,
        kernel,
        "normalize",
        _NORMALIZE_OPS[kernel],
        out,
        x.shape[-1] if x.shape else 1,
        eps,
        weight,
        bias,
    )


def gather(dev: WgpuDevice, entry: str, ids: WgpuBuffer, src: WgpuBuffer, out: WgpuBuffer, rows: int) -> None:
    """``gather``: rows of the table ``src`` picked by ``ids``; ``scatter``: their gradient summed per row."""
    wgsl = float_type(dev, src.dtype, "embedding")
    ids, src = dev.dense(ids), dev.dense(src)
    dim = src.shape[-1] if src.shape else 1
    words_per_id = 2 if ids.dtype.itemsize == 8 else 1
    src_bind, src_off = _bind(dev, src)
    source = kernel_source("gather.wgsl", _flags(wgsl), (("T", wgsl),), ())
    pipeline = dev.runtime.pipeline(
        source, ("uniform", "read", "read", "write", "write"), {"WG": dev.workgroup}, entry
    )
    error = dev.error_flag()
    # a gather goes by blocks of ids; every id of a scatter meets every row of its output
    parts = _units(dev, ids.size, [(ids, 1, False), (out, dim, True)], "id") if entry == "gather" else []
    for first, count in parts or [(0, ids.size)]:
        ids_bind, ids_off = _bind(dev, ids.view((count,), (1,), ids.offset + first))
        target = out if entry == "scatter" else out.view((count * dim,), (1,), out.offset + first * dim)
        written: Written = []
        bindings = [ids_bind, src_bind, _bind0(dev, target, written), (error, 0, error.nbytes)]
        signed = int(ids.dtype.kind == "i")
        words = [target.size, dim, rows, count, words_per_id, signed, ids_off * words_per_id, src_off]
        workgroups = flat_workgroups(target.size, dev.workgroup)
        dev.runtime.dispatch(pipeline, bindings, _uniform(words), workgroups)
        _copy_back(dev, written)


def conv(
    dev: WgpuDevice,
    entry: str,
    in0: WgpuBuffer,
    in1: WgpuBuffer,
    out: WgpuBuffer,
    bias: WgpuBuffer | None,
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    y_shape: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> None:
    """One convolution entry (``forward``, ``backward_input``, ``backward_weight``) on dense operands, by
    blocks of batch samples; ``backward_weight`` sums the blocks' partial gradients."""
    wgsl = float_type(dev, out.dtype, "conv")
    two = len(stride) == 2

    def hw(values: Sequence[int], one: int) -> list[int]:
        return list(values) if two else [one, *values]

    n, c, h, w = x_shape[0], x_shape[1], *hw(x_shape[2:], 1)
    o, kh, kw = w_shape[0], *hw(w_shape[2:], 1)
    oh, ow = hw(y_shape[2:], 1)
    (sh, sw), (ph, pw), (dh, dw) = hw(stride, 1), hw(padding, 0), hw(dilation, 1)
    source = kernel_source("conv.wgsl", _flags(wgsl), (("T", wgsl),), ())
    layout = ("uniform", "read", "read", "write", "read")
    pipeline = dev.runtime.pipeline(source, layout, {"WG": dev.workgroup}, entry)
    tensors = [dev.dense(in0), dev.dense(in1), out]
    sample, grad = c * h * w, o * oh * ow  # elements per batch sample of x and of the output gradient
    per = {"forward": (sample, 0, grad), "backward_input": (grad, 0, sample)}.get(entry, (sample, grad, 0))
    split = [(t, p, True) for t, p in zip(tensors, per, strict=True) if p]
    parts = _units(dev, n, split, "batch sample") or [(0, n)]
    fixed = [None if p else _bind0(dev, t) for t, p in zip(tensors[:2], per[:2], strict=True)]
    bias_bind = _bind0(dev, dev.dense(bias)) if bias is not None else None
    summed = entry == "backward_weight" and len(parts) > 1  # each block gives its part of the sum
    cls = class_of(out.dtype, dev.f16)
    total: WgpuBuffer | None = None
    for first, count in parts:
        views = [
            t.view((count * p,), (1,), t.offset + first * p) if p else t
            for t, p in zip(tensors, per, strict=True)
        ]
        target = dev.new_dense(out.shape, out.dtype) if summed else views[2]
        written: Written = []
        bindings = [fixed[i] or _bind0(dev, views[i]) for i in range(2)]
        bindings += [_bind0(dev, target, written), bias_bind or bindings[0]]
        words = [target.size, count, c, h, w, o, oh, ow, kh, kw, groups, int(bias is not None)]
        words += [sh, sw, ph, pw, dh, dw]
        workgroups = flat_workgroups(target.size, dev.workgroup)
        dev.runtime.dispatch(pipeline, bindings, _uniform(words), workgroups)
        _copy_back(dev, written)
        if summed:
            add = [total, target] if total is not None else None
            total = dev.graph.elementwise("add", add, out.shape, out.dtype, cls) if add else target
    if total is not None:
        dev.write_view(out, dev.graph.concrete(total))


def attention(
    dev: WgpuDevice,
    q: WgpuBuffer,
    k: WgpuBuffer,
    v: WgpuBuffer,
    mask: WgpuBuffer | None,
    out: WgpuBuffer,
    is_causal: bool,
    scale: float,
) -> None:
    """Fused attention on dense ``(B, L, E)``, ``(B, S, E)``, ``(B, S, Ev)``, f32 mask ``(B, L, S)``, by
    blocks of the batch axis (batch times heads)."""
    wgsl = float_type(dev, q.dtype, "sdpa")
    batches, length, e = q.shape
    source_len, ev = k.shape[1], v.shape[2]
    if max(e, ev) > 512:
        raise Unsupported(f"attention head sizes above 512 (got {e}, {ev})")
    tensors = [dev.dense(q), dev.dense(k), dev.dense(v), *([mask] if mask is not None else []), out]
    per = [
        length * e,
        source_len * e,
        source_len * ev,
        *([length * source_len] if mask is not None else []),
        length * ev,
    ]
    split = [(t, p, True) for t, p in zip(tensors, per, strict=True)]
    source = kernel_source(
        "attention.wgsl",
        _reduce_flags(dev, wgsl),
        (("T", wgsl),),
        ("workgroup_reduce.wgsl", "elementwise_ops.wgsl"),
    )
    layout = ("uniform", "read", "read", "read", "read", "write")
    pipeline = dev.runtime.pipeline(source, layout, {"WG": dev.workgroup})
    for first, count in _units(dev, batches, split, "batch (one head's queries, keys and values)"):
        views = [t.view((count * p,), (1,), t.offset + first * p) for t, p in zip(tensors, per, strict=True)]
        written: Written = []
        bindings = [_bind0(dev, t) for t in views[:3]]
        bindings.append(_bind0(dev, views[3]) if mask is not None else bindings[0])
        bindings.append(_bind0(dev, views[-1], written))
        words = [
            count * length,
            length,
            source_len,
            e,
            ev,
            int(is_causal),
            int(mask is not None),
            float(scale),
        ]
        dev.runtime.dispatch(pipeline, bindings, _uniform(words), count * length)
        _copy_back(dev, written)
