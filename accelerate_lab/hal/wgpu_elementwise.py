"""Running a generated elementwise program: merge dimensions, bind windows, split past binding limits.

Operands are strided views over the program's iteration shape. Adjacent axes that are contiguous
for every operand merge (a dense op becomes 1-D). Each operand is bound as the byte window its
elements span (:mod:`accelerate_lab.hal.wgpu_tiling`); when a window would exceed the adapter's
``max-storage-buffer-binding-size`` the iteration space is cut into boxes, one dispatch each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, span
from accelerate_lab.hal.wgpu_codegen import MAX_RANK, MAX_SCALAR_WORDS, ElementwiseProgram, Unsupported
from accelerate_lab.hal.wgpu_runtime import Binding, flat_workgroups, pack_words
from accelerate_lab.hal.wgpu_tiling import bind_window, fit_box, pieces

if TYPE_CHECKING:
    from accelerate_lab.hal.wgpu_runtime import Runtime

__all__ = ["collapse", "run_program"]

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
    box = fit_box(runtime, [(v.itemsize, st, 0) for v, st in zip(views, strides, strict=True)], dims)
    scalars = [*program.scalar_words, *([0] * (MAX_SCALAR_WORDS - len(program.scalar_words)))]
    for origin, shape in pieces(dims, box):
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
