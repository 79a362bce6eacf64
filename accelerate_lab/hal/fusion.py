"""Fusion on the ``wgpu`` device: elementwise ops and matmuls are recorded lazily and run as few kernels.

An elementwise kernel call returns a buffer whose value is a pending :class:`Lazy` node. Nothing
runs until something needs the data: a download, a non-elementwise kernel, a view, or a write into
a buffer that a pending node reads. Then the whole pending graph under that buffer becomes one
generated kernel (``elementwise.wgsl``). Intermediate results that are still referenced from
Python are written by the same kernel as extra outputs, so nothing is computed twice; dropped
intermediates are never stored at all. A matmul whose only consumer is a chain of elementwise ops
with bias-like operands (a scalar, or a vector along the last axis: ``linear`` + activation) runs
as one matmul kernel with that chain generated into its epilogue.

Fused and unfused results are bit-identical: float16 values are rounded after every op and uint8
values wrap after every op, exactly as separate kernels would store them.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from accelerate_lab.hal.wgpu_buffer import WgpuBuffer, broadcast_view
from accelerate_lab.hal.wgpu_codegen import ElementwiseProgram, Reg, class_of
from accelerate_lab.hal.wgpu_runtime import Storage

__all__ = ["MAX_OPS", "FusionHost", "Lazy", "LazyGraph", "apply_op"]

MAX_OPS = 48
_EPILOGUE_OPS = frozenset(
    {"add", "sub", "mul", "div", "maximum", "minimum", "neg", "exp", "sqrt", "abs", "relu", "sigmoid", "tanh"}
    | {"silu", "gelu", "gelu_tanh", "erf"}
)


class FusionHost(Protocol):
    """What the graph needs from the device."""

    f16: bool
    max_operands: int

    def new_dense(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> WgpuBuffer: ...

    def run_program(self, program: ElementwiseProgram) -> None: ...

    def run_matmul(
        self,
        a: WgpuBuffer,
        b: WgpuBuffer,
        out: WgpuBuffer,
        epilogue: ElementwiseProgram | None,
        result: Reg | None,
    ) -> None: ...


def _leaf_key(buf: WgpuBuffer) -> tuple[object, ...]:
    return (id(buf.storage), buf.offset, buf.strides, buf.shape, buf.dtype.name)


class Lazy:
    """A pending op: ``op`` of ``args`` (pending nodes, computed buffers, scalars) in class ``compute``."""

    __slots__ = (
        "__weakref__",
        "args",
        "compute",
        "consumers",
        "dtype",
        "leaves",
        "op",
        "ops",
        "owner",
        "result",
        "serial",
        "shape",
        "storages",
    )

    def __init__(
        self,
        op: str,
        args: tuple[Lazy | WgpuBuffer | np.generic, ...],
        shape: tuple[int, ...],
        dtype: np.dtype[np.generic],
        compute: str,
        serial: int,
    ) -> None:
        self.op = op
        self.args = args
        self.shape = shape
        self.dtype = dtype
        self.compute = compute
        self.serial = serial
        self.result: WgpuBuffer | None = None
        self.owner: weakref.ref[WgpuBuffer] | None = None
        self.consumers = 0
        self.ops: int = 1 + sum(a.ops for a in args if isinstance(a, Lazy))
        leaves: set[tuple[object, ...]] = set()
        storages: set[int] = set()
        for a in args:
            if isinstance(a, Lazy):
                leaves |= a.leaves
                storages |= a.storages
                a.consumers += 1
            elif isinstance(a, WgpuBuffer):
                leaves.add(_leaf_key(a))
                storages.add(id(a.storage))
        self.leaves: frozenset[tuple[object, ...]] = frozenset(leaves)
        self.storages: frozenset[int] = frozenset(storages)

    def alive(self) -> bool:
        """Whether Python still holds the buffer of this value (then it must be stored)."""
        return self.owner is not None and self.owner() is not None


class LazyGraph:
    """The pending ops of one device and the rules that turn them into kernels."""

    def __init__(self, host: FusionHost) -> None:
        self._host = host
        self._live: weakref.WeakSet[Lazy] = weakref.WeakSet()
        self._serial = itertools.count()

    # ---- recording ------------------------------------------------------------------------------
    def _arg(self, x: WgpuBuffer | np.generic) -> Lazy | WgpuBuffer | np.generic:
        if isinstance(x, WgpuBuffer) and x.lazy is not None:
            return x.lazy
        return x

    def _record(self, node: Lazy) -> WgpuBuffer:
        buf = WgpuBuffer(node.shape, node.dtype, None, lazy=node)
        node.owner = weakref.ref(buf)
        self._live.add(node)
        return buf

    def elementwise(
        self,
        op: str,
        args: Sequence[WgpuBuffer | np.generic],
        shape: tuple[int, ...],
        dtype: np.dtype[np.generic],
        compute: str,
    ) -> WgpuBuffer:
        """A buffer holding ``op(args)`` once needed; ``op`` is an op-library name or ``cast``."""
        node = Lazy(op, tuple(self._arg(a) for a in args), shape, dtype, compute, next(self._serial))
        if len(node.leaves) + 1 > self._host.max_operands or node.ops > MAX_OPS:
            for a in args:  # too big to grow: compute the inputs, which become plain operands
                if isinstance(a, WgpuBuffer):
                    self.concrete(a)
            node = Lazy(op, tuple(self._arg(a) for a in args), shape, dtype, compute, next(self._serial))
        return self._record(node)

    def matmul(
        self, a: WgpuBuffer, b: WgpuBuffer, shape: tuple[int, ...], dtype: np.dtype[np.generic]
    ) -> WgpuBuffer:
        """A buffer holding ``a @ b`` (views prepared by the device) once needed."""
        return self._record(
            Lazy("matmul", (self.concrete(a), self.concrete(b)), shape, dtype, "f", next(self._serial))
        )

    # ---- computing ------------------------------------------------------------------------------
    def concrete(self, buf: WgpuBuffer) -> WgpuBuffer:
        """``buf`` with its data computed (it gets storage); computed buffers pass through."""
        if buf.lazy is not None:
            self._compute(buf.lazy)
        return buf

    def before_write(self, storage: Storage | None) -> None:
        """Compute every pending op that reads ``storage``, before it is overwritten in place."""
        target = id(storage)
        for node in sorted(self._live, key=lambda n: n.serial):
            if node.result is None and target in node.storages:
                self._compute(node)

    def _finish(self, node: Lazy, result: WgpuBuffer) -> None:
        node.result = result
        node.args = ()
        owner = node.owner() if node.owner is not None else None
        if owner is not None:
            owner.storage, owner.offset, owner.strides, owner.lazy = (
                result.storage,
                result.offset,
                result.strides,
                None,
            )

    def _compute(self, node: Lazy) -> WgpuBuffer:
        if node.result is not None:
            return node.result
        host = self._host
        if node.op == "matmul":
            a, b = node.args
            assert isinstance(a, WgpuBuffer) and isinstance(b, WgpuBuffer)
            out = host.new_dense(node.shape, node.dtype)
            host.run_matmul(a, b, out, None, None)
            self._finish(node, out)
            return out
        if self._fuse_into_matmul(node):
            assert node.result is not None
            return node.result
        dag = _pending(node)
        for m in dag:
            if m.op == "matmul":
                self._compute(m)
        leaves = _leaves(dag)
        if len(leaves) + 1 > host.max_operands:
            for a in node.args:
                if isinstance(a, Lazy):
                    self._compute(a)
            return self._compute(node)
        extra = [m for m in dag if m is not node and m.result is None and m.alive() and m.shape == node.shape]
        outputs = [node, *extra[: max(0, host.max_operands - len(leaves) - 1)]]
        program = ElementwiseProgram(node.shape, host.f16)
        results = {m: host.new_dense(m.shape, m.dtype) for m in outputs}
        memo: dict[Lazy, Reg] = {}
        for m in outputs:
            program.store(results[m], self._emit(program, m, node.shape, memo))
        host.run_program(program)
        for m in outputs:
            self._finish(m, results[m])
        return results[node]

    def _emit(
        self,
        program: ElementwiseProgram,
        x: Lazy | WgpuBuffer | np.generic,
        shape: tuple[int, ...],
        memo: dict[Lazy, Reg],
    ) -> Reg:
        if isinstance(x, np.generic):
            return program.scalar(x)
        if isinstance(x, WgpuBuffer):
            return program.load(broadcast_view(x, shape))
        if x.result is not None:
            return program.load(broadcast_view(x.result, shape))
        if x not in memo:
            regs = [self._emit(program, a, shape, memo) for a in x.args]
            memo[x] = apply_node(program, x, regs)
        return memo[x]

    def _fuse_into_matmul(self, root: Lazy) -> bool:
        """Run ``root`` as one matmul kernel with an epilogue, when its graph is matmul + bias-like chain."""
        chain: list[Lazy] = []
        node: Lazy | WgpuBuffer | np.generic = root
        while isinstance(node, Lazy) and node.result is None and node.op != "matmul":
            pending = [a for a in node.args if isinstance(a, Lazy) and a.result is None]
            if (
                node.op not in _EPILOGUE_OPS
                or len(pending) != 1
                or (chain and (node.alive() or node.consumers != 1))
            ):
                return False
            chain.append(node)
            node = pending[0]
        mm = node
        if not chain or not isinstance(mm, Lazy) or mm.op != "matmul" or mm.alive() or mm.consumers != 1:
            return False
        if any(n.shape != mm.shape or n.dtype != mm.dtype or n.compute not in "fh" for n in chain):
            return False
        program = ElementwiseProgram(mm.shape, self._host.f16, address="ep_addr(col, {k}u)")
        reg = program.given("x", "f")
        b_arg = mm.args[1]
        assert isinstance(b_arg, WgpuBuffer)
        along_n = mm.shape[-1:] == b_arg.shape[-1:]  # not so for a vector B: the result's last axis is M
        below: Lazy = mm
        for n in reversed(chain):
            regs = []
            for a in n.args:
                if a is below:
                    regs.append(reg)
                elif isinstance(a, np.generic):
                    regs.append(program.scalar(a))
                else:
                    view = broadcast_view(a.result if isinstance(a, Lazy) else a, mm.shape)  # type: ignore[arg-type]
                    if (
                        any(view.strides[:-1])
                        or (view.strides[-1:] != (0,) and not along_n)
                        or len(program.operands) + 4 > self._host.max_operands
                    ):
                        return False
                    regs.append(program.load(view))
            reg = apply_node(program, n, regs)
            below = n
        a, b = mm.args
        assert isinstance(a, WgpuBuffer) and isinstance(b, WgpuBuffer)
        out = self._host.new_dense(root.shape, root.dtype)
        self._host.run_matmul(a, b, out, program, reg)
        self._finish(root, out)
        return True


def apply_op(
    program: ElementwiseProgram, op: str, compute: str, dtype: np.dtype[np.generic], regs: list[Reg]
) -> Reg:
    """The statements for one op: a conversion for ``cast``, else ``op`` in class ``compute``."""
    if op == "cast":
        return program.convert(regs[0], class_of(dtype, program.f16))
    return program.convert(program.apply(op, compute, regs), class_of(dtype, program.f16))


def apply_node(program: ElementwiseProgram, node: Lazy, regs: list[Reg]) -> Reg:
    """The statements for one pending node."""
    return apply_op(program, node.op, node.compute, node.dtype, regs)


def _leaves(dag: list[Lazy]) -> set[tuple[object, ...]]:
    """The distinct computed operands the pending nodes ``dag`` read."""
    out: set[tuple[object, ...]] = set()
    for node in dag:
        for a in node.args:
            if isinstance(a, Lazy) and a.result is not None:
                out.add(_leaf_key(a.result))
            elif isinstance(a, WgpuBuffer):
                out.add(_leaf_key(a))
    return out


def _pending(root: Lazy) -> list[Lazy]:
    """Pending nodes under ``root`` (inclusive), inputs before their users."""
    order: list[Lazy] = []
    seen: set[int] = set()
    stack: list[tuple[Lazy, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((a, False) for a in node.args if isinstance(a, Lazy) and a.result is None)
    return order
