"""Generating elementwise kernels: a straight-line program over registers, emitted into elementwise.wgsl.

A program reads operands (strided views broadcast to one iteration shape) and scalars (uniform
words), applies functions of ``elementwise_ops.wgsl`` and stores results. Every value has a
*class*, the register type of its dtype (see that file); float16 values are computed in f32 and
rounded after each op, so a fused chain gives exactly the numbers of the unfused ops.
Only names from the op library and operand numbers enter the source.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from accelerate_lab.hal import wgpu_shaders
from accelerate_lab.hal.wgpu_buffer import WgpuBuffer

__all__ = [
    "CLASS_OF",
    "MAX_RANK",
    "MAX_SCALAR_WORDS",
    "ElementwiseProgram",
    "Reg",
    "Unsupported",
    "class_of",
    "library",
]

CLASS_OF = {
    "float32": "f",
    "float16": "h",
    "int32": "i",
    "uint8": "u",
    "bool": "b",
    "int64": "l",
    "float64": "d",
}
_STORAGE = {"f": "f32", "h": "f16", "i": "i32", "u": "u32", "b": "u32", "l": "vec2<u32>", "d": "vec2<u32>"}
_COMPARE = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
MAX_RANK = 8
MAX_SCALAR_WORDS = 16
_SCALAR_BASE = 12


class Unsupported(Exception):
    """This op/dtype combination has no WGSL here; the device runs it on the cpu, visibly."""


def class_of(dtype: np.dtype[np.generic], f16: bool) -> str:
    """The register class of a dtype; ``Unsupported`` for float16 without ``shader-f16``."""
    cls = CLASS_OF[dtype.name]
    if cls == "h" and not f16:
        raise Unsupported("float16 needs the adapter feature shader-f16")
    return cls


@dataclass(frozen=True)
class Reg:
    name: str
    cls: str


def _lib(cls: str) -> str:
    return "f" if cls == "h" else cls


@dataclass
class ElementwiseProgram:
    """Operands, scalars and statements of one generated elementwise kernel."""

    shape: tuple[int, ...]
    f16: bool
    address: str = "offset_of(i, {k}u)"
    operands: list[WgpuBuffer] = field(default_factory=list)
    writes: list[bool] = field(default_factory=list)
    scalar_words: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    _loaded: dict[tuple[object, ...], Reg] = field(default_factory=dict)

    def _emit(self, expr: str, cls: str) -> Reg:
        reg = Reg(f"v{len(self.lines)}", cls)
        self.lines.append(f"    let {reg.name} = {expr};")
        return reg

    def _operand(self, view: WgpuBuffer, write: bool) -> int:
        self.operands.append(view)
        self.writes.append(write)
        return len(self.operands) - 1

    def load(self, view: WgpuBuffer) -> Reg:
        """Read a view (already broadcast to ``shape``); the same view is read once."""
        assert view.storage is not None
        key = (id(view.storage), view.offset, view.strides, view.dtype.name)
        if key not in self._loaded:
            cls = class_of(view.dtype, self.f16)
            k = self._operand(view, write=False)
            expr = f"op{k}[{self.address.format(k=k)}]"
            self._loaded[key] = self._emit(f"f32({expr})" if cls == "h" else expr, cls)
        return self._loaded[key]

    def scalar(self, value: np.generic) -> Reg:
        """A constant of ``value``'s dtype, passed as uniform words."""
        cls = class_of(value.dtype, self.f16)
        at = _SCALAR_BASE + len(self.scalar_words)
        if cls in "fh":
            self.scalar_words.append(int(np.float32(value).view(np.uint32)))
            expr = f"bitcast<f32>(word({at}u))"
        elif cls in "ld":
            low, high = np.asarray(value).reshape(1).view(np.uint32)
            self.scalar_words += [int(low), int(high)]
            expr = f"vec2<u32>(bitcast<u32>(word({at}u)), bitcast<u32>(word({at + 1}u)))"
        else:
            self.scalar_words.append(int(np.asarray(value).astype(np.int64)) & 0xFFFFFFFF)
            expr = f"word({at}u)" if cls == "i" else f"bitcast<u32>(word({at}u))"
        if len(self.scalar_words) > MAX_SCALAR_WORDS:
            raise Unsupported(f"more than {MAX_SCALAR_WORDS} scalar words in one kernel")
        return self._emit(expr, cls)

    def given(self, name: str, cls: str) -> Reg:
        """A register the surrounding kernel already defines (the matmul accumulator)."""
        return Reg(name, cls)

    def convert(self, reg: Reg, to: str) -> Reg:
        """numpy's astype between classes (float16 rounds, uint8 wraps)."""
        if reg.cls == to or (reg.cls == "h" and to == "f"):
            return reg
        src, dst = _lib(reg.cls), _lib(to)
        expr = reg.name
        if src != dst:
            if (dst, f"from_{src}") not in wgpu_shaders.library_ops():
                raise Unsupported(f"no conversion from class {reg.cls} to {to}")
            expr = f"{dst}_from_{src}({expr})"
        return self._emit(f"round_h({expr})" if to == "h" else expr, to)

    def apply(self, op: str, cls: str, args: list[Reg]) -> Reg:
        """``<class>_<op>(args)`` with the arguments converted to ``cls`` (a ``where`` condition to bool)."""
        if (_lib(cls), op) not in wgpu_shaders.library_ops():
            raise Unsupported(f"no {op!r} for class {cls}")
        if op == "where":
            args = [self.convert(args[0], "b"), *(self.convert(a, cls) for a in args[1:])]
        else:
            args = [self.convert(a, cls) for a in args]
        expr = f"{_lib(cls)}_{op}({', '.join(a.name for a in args)})"
        if op in _COMPARE:
            return self._emit(expr, "b")
        return self._emit(f"round_h({expr})" if cls == "h" and op != "where" else expr, cls)

    def store(self, view: WgpuBuffer, reg: Reg) -> None:
        """Write ``reg`` (converted to the view's dtype) through the view's strides."""
        cls = class_of(view.dtype, self.f16)
        value = self.convert(reg, cls)
        k = self._operand(view, write=True)
        self.lines.append(
            f"    op{k}[offset_of(i, {k}u)] = {'f16(' + value.name + ')' if cls == 'h' else value.name};"
        )

    def bindings(self, first: int) -> str:
        """Storage declarations of the operands, numbered from binding ``first``."""
        return "\n".join(
            f"@group(0) @binding({k + first}) var<storage, {'read_write' if w else 'read'}> op{k}: "
            f"array<{_STORAGE[class_of(v.dtype, self.f16)]}>;"
            for k, (v, w) in enumerate(zip(self.operands, self.writes, strict=True))
        )

    @property
    def uses_f16(self) -> bool:
        """Whether the source needs ``enable f16`` (a float16 operand)."""
        return any(CLASS_OF[v.dtype.name] == "h" for v in self.operands)

    def source(self) -> str:
        """The complete WGSL module."""
        return _module(("F16",) if self.uses_f16 else (), self.bindings(1), "\n".join(self.lines))


@functools.lru_cache(maxsize=256)
def _module(flags: tuple[str, ...], bindings: str, body: str) -> str:
    """The module for one generated kernel; cached since a loop builds the same kernel every step and
    preparing the op library costs more host time than a large dispatch takes on a GPU."""
    template = wgpu_shaders.prepare(
        wgpu_shaders.load("elementwise.wgsl"), flags, slots={"BINDINGS": bindings, "BODY": body}
    )
    return wgpu_shaders.compose(template, library(flags))


@functools.cache
def library(flags: tuple[str, ...]) -> str:
    """The op library prepared for ``flags``."""
    return wgpu_shaders.prepare(wgpu_shaders.load("elementwise_ops.wgsl"), flags)
