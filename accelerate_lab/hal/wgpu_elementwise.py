"""Running a generated elementwise program: merge dimensions, bind windows, split past binding limits.

Operands are strided views over the program's iteration shape. Adjacent axes that are contiguous
for every operand merge (a dense op becomes 1-D). Each operand is bound as the byte window its
elements span, so a view deep inside a large buffer binds only what it reads; when a window would
exceed the adapter's ``max-storage-buffer-binding-size`` the iteration space is cut into boxes
(halving the axis that spreads the largest window) and each box is one dispatch with its own windows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, span
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
    """Bind elements ``[lo, hi]`` at an aligned offset; returns the binding and its first element."""
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


def _boxes(
    runtime: Runtime, views: Sequence[WgpuBuffer], dims: list[int], strides: list[list[int]]
) -> list[int]:
    """The largest box (a sub-shape of ``dims``) in which every operand's window fits one binding."""
    limit = runtime.profile.max_binding - 2 * runtime.profile.storage_align
    box = list(dims)
    while True:
        spans = [
            (sum(abs(s) * (b - 1) for s, b in zip(st, box, strict=True)) + 1) * v.itemsize
            for v, st in zip(views, strides, strict=True)
        ]
        worst = max(range(len(views)), key=lambda k: spans[k])
        if spans[worst] <= limit:
            return box
        axis = max(range(len(box)), key=lambda d: abs(strides[worst][d]) * (box[d] - 1))
        if box[axis] == 1:
            raise DeviceError(f"one element of {views[worst].dtype.name} exceeds the binding limit {limit}")
        box[axis] = -(-box[axis] // 2)


def run_program(runtime: Runtime, program: ElementwiseProgram, workgroup: int) -> None:
    """Dispatch ``program`` over its shape (nothing for an empty shape), one dispatch per box that fits."""
    if math.prod(program.shape) == 0:
        return
    views: list[WgpuBuffer] = program.operands
    dims, strides = collapse(program.shape, [v.strides for v in views])
    if len(dims) > MAX_RANK:
        raise Unsupported(f"more than {MAX_RANK} non-mergeable axes")
    layout = ("uniform", *("write" if w else "read" for w in program.writes))
    pipeline = runtime.pipeline(program.source(), layout, {"WG": workgroup, "LINEAR": int(len(dims) == 1)})
    box = _boxes(runtime, views, dims, strides)
    scalars = [*program.scalar_words, *([0] * (MAX_SCALAR_WORDS - len(program.scalar_words)))]
    for origin in itertools.product(*(range(0, n, b) for n, b in zip(dims, box, strict=True))):
        shape = [min(b, n - o) for o, b, n in zip(origin, box, dims, strict=True)]
        count = math.prod(shape)
        words = [count, len(shape), 0, 0, *shape, *([1] * (MAX_RANK - len(shape))), *scalars]
        bindings: list[Binding] = []
        for view, st in zip(views, strides, strict=True):
            assert view.storage is not None
            offset = view.offset + sum(o * s for o, s in zip(origin, st, strict=True))
            lo, hi = span(shape, st, offset)
            binding, first = bind_window(runtime, view.storage, lo, hi, view.itemsize)
            bindings.append(binding)
            words += [offset - first, *st, *([0] * (MAX_RANK - len(st)))]
        runtime.dispatch(
            pipeline, bindings, pack_words(words, _UNIFORM_WORDS), flat_workgroups(count, workgroup)
        )
