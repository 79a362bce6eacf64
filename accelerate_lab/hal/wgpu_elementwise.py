"""Running a generated elementwise program: merge dimensions, bind windows, split past binding limits.

Operands are strided views over the program's iteration shape. Adjacent axes that are contiguous
for every operand merge (a dense op becomes 1-D). Each operand is bound as the byte window its
elements span, so a view deep inside a large buffer binds only what it reads; when a window would
exceed the adapter's ``max-storage-buffer-binding-size`` the iteration space is split along its
first axis into several dispatches, each binding its own windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer
from accelerate_lab.hal.wgpu_codegen import MAX_RANK, MAX_SCALAR_WORDS, ElementwiseProgram, Unsupported
from accelerate_lab.hal.wgpu_runtime import Binding, Runtime, flat_workgroups, pack_words

if TYPE_CHECKING:
    from accelerate_lab.hal.wgpu_runtime import Storage

__all__ = ["bind_window", "collapse", "run_program"]

_UNIFORM_WORDS = 256


def collapse(shape: Sequence[int], strides: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 axes and merge neighbours that are contiguous in every operand."""
    keep = [d for d, n in enumerate(shape) if n != 1]
    dims = [shape[d] for d in keep]
    out = [[s[d] for d in keep] for s in strides]
    d = len(dims) - 1
    while d > 0:
        if all(s[d - 1] == s[d] * dims[d] for s in out):
            dims[d - 1] *= dims[d]
            del dims[d]
            for s in out:
                s[d - 1] = s[d]
                del s[d]
        d -= 1
    if not dims:
        return [1], [[0] for _ in strides]
    return dims, out


def bind_window(runtime: Runtime, storage: Storage, lo: int, hi: int, itemsize: int) -> tuple[Binding, int]:
    """Bind elements ``[lo, hi]`` of a buffer at an aligned offset; returns the binding and its first element."""
    align = runtime.profile.storage_align
    start = (lo * itemsize) // align * align
    end = min(storage.nbytes, -(-((hi + 1) * itemsize) // 4) * 4)
    size = max(4, end - start)
    if size > runtime.profile.max_binding:
        raise DeviceError(
            f"a binding of {size} bytes exceeds this adapter's max-storage-buffer-binding-size "
            f"({runtime.profile.max_binding}); split the tensor or use the cpu device"
        )
    return (storage, start, size), start // itemsize


def _row_span(offset: int, dims: Sequence[int], strides: Sequence[int], r0: int, r1: int) -> tuple[int, int]:
    rest_lo = sum(min(0, (n - 1) * s) for n, s in zip(dims[1:], strides[1:], strict=True))
    rest_hi = sum(max(0, (n - 1) * s) for n, s in zip(dims[1:], strides[1:], strict=True))
    a, b = r0 * strides[0], (r1 - 1) * strides[0]
    return offset + min(a, b) + rest_lo, offset + max(a, b) + rest_hi


def _rows_per_dispatch(runtime: Runtime, program: ElementwiseProgram, dims: list[int], strides: list[list[int]]) -> int:
    limit = runtime.profile.max_binding - 2 * runtime.profile.storage_align
    rows = dims[0]
    for view, st in zip(program.operands, strides, strict=True):
        lo, hi = _row_span(view.offset, dims, st, 0, 1)
        inner = (hi - lo + 1) * view.itemsize
        step = abs(st[0]) * view.itemsize
        if step:
            rows = min(rows, max(1, (limit - inner) // step + 1))
    return rows


def run_program(runtime: Runtime, program: ElementwiseProgram, workgroup: int) -> None:
    """Dispatch ``program`` over its shape (nothing for an empty shape)."""
    count = math.prod(program.shape)
    if count == 0:
        return
    views: list[WgpuBuffer] = program.operands
    dims, strides = collapse(program.shape, [v.strides for v in views])
    if len(dims) > MAX_RANK:
        raise Unsupported(f"more than {MAX_RANK} non-mergeable axes")
    layout = ("uniform", *("write" if w else "read" for w in program.writes))
    pipeline = runtime.pipeline(program.source(), layout, {"WG": workgroup})
    inner = math.prod(dims[1:])
    rows = _rows_per_dispatch(runtime, program, dims, strides)
    head = [*dims, *([1] * (MAX_RANK - len(dims)))]
    scalars = [*program.scalar_words, *([0] * (MAX_SCALAR_WORDS - len(program.scalar_words)))]
    for r0 in range(0, dims[0], rows):
        r1 = min(dims[0], r0 + rows)
        bindings: list[Binding] = []
        words = [(r1 - r0) * inner, len(dims), r0 * inner, 0, *head, *scalars]
        for view, st in zip(views, strides, strict=True):
            assert view.storage is not None
            lo, hi = _row_span(view.offset, dims, st, r0, r1)
            binding, first = bind_window(runtime, view.storage, lo, hi, view.itemsize)
            bindings.append(binding)
            words += [view.offset - first, *st, *([0] * (MAX_RANK - len(st)))]
        runtime.dispatch(pipeline, bindings, pack_words(words, _UNIFORM_WORDS), flat_workgroups(words[0], workgroup))
