"""WebNN graphs as the kernel describes them to the browser (sans I/O): operands, builder calls, and
the check of each call against the context's ``opSupportLimits()``.

A :class:`GraphRecorder` collects ``MLGraphBuilder`` calls as JSON (``{"op", "args"}``, with
``{"$": k}`` for operand ``k``), numbering the graph's inputs first. Every call is checked against
the limits the browser reported (data types and ranks per named input and for the output), so a
graph the kernel sends is one this context accepts; a call outside them raises :class:`NotInWebnn`.
The widget's ``webnn_graph.ts`` replays the calls.

>>> f32 = {"dataTypes": ["float32"], "rankRange": {"min": 0, "max": 8}}
>>> rec = GraphRecorder(Support({"input": f32, "reshape": {}, "relu": {"input": f32, "output": f32}}))
>>> x = rec.input((2, 3), np.dtype(np.float32))
>>> rec.call("relu", [rec.reshape(x, (2, 3))], (2, 3), x.dtype).index
2
>>> rec.nodes[-1]
{'op': 'relu', 'args': [{'$': 1}]}
>>> rec.call("relu", [Operand(0, (6,), np.dtype(np.int32))], (6,), np.dtype(np.int32))
Traceback (most recent call last):
...
accelerate_lab.hal.browser_webnn_graph.NotInWebnn: this WebNN context has no relu on int32 (input)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DATA_TYPES", "GraphRecorder", "NotInWebnn", "Operand", "Support", "data_type"]

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]

DATA_TYPES = {
    "float32": "float32",
    "float16": "float16",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "bool": "uint8",  # 0 or 1, as WebNN's comparisons return
}
# the named inputs of builder methods, in argument order, where they are not just "input"
_INPUT_NAMES = {
    **dict.fromkeys(("add", "sub", "mul", "div", "pow", "max", "min", "matmul"), ("a", "b")),
    **dict.fromkeys(
        ("equal", "notEqual", "greater", "greaterOrEqual", "lesser", "lesserOrEqual"), ("a", "b")
    ),
    "where": ("condition", "trueValue", "falseValue"),
    "conv2d": ("input", "filter"),
    "concat": ("inputs",),
}


class NotInWebnn(Exception):
    """A kernel, or one of the builder calls it needs, is outside what this WebNN context runs."""


def data_type(dtype: np.dtype[np.generic]) -> str:
    """The WebNN data type holding numpy's ``dtype``; `NotInWebnn` for the others (float64, ...)."""
    found = DATA_TYPES.get(dtype.name)
    if found is None:
        raise NotInWebnn(f"WebNN has no {dtype.name} tensors")
    return found


@dataclass(frozen=True)
class Operand:
    """Operand ``index`` of a graph being recorded: its shape and the numpy dtype it stands for."""

    index: int
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]

    def ref(self) -> dict[str, Json]:
        return {"$": self.index}


class Support:
    """A context's ``opSupportLimits()``: data types and rank ranges per op and named input."""

    def __init__(self, limits: Mapping[str, object]) -> None:
        self._limits = limits
        byte_limit = limits.get("maxTensorByteLength")
        self._max_bytes = int(byte_limit) if isinstance(byte_limit, int | float) else None

    def check(self, op: str, named: Sequence[tuple[str, Operand]]) -> None:
        """`NotInWebnn` unless ``op`` takes these operands (the output included, named ``output``)."""
        entries = self._limits.get(op)
        if not isinstance(entries, Mapping):
            raise NotInWebnn(f"this WebNN context has no {op}")
        for name, operand in named:
            kind = data_type(operand.dtype)
            if 0 in operand.shape:
                raise NotInWebnn(f"{op} of an empty tensor {operand.shape}")
            nbytes = math.prod(operand.shape) * operand.dtype.itemsize
            if self._max_bytes is not None and nbytes > self._max_bytes:
                raise NotInWebnn(f"{op}: a tensor of shape {operand.shape} exceeds maxTensorByteLength")
            # graph inputs and outputs have one entry; builder methods one per named operand
            entry = entries if "dataTypes" in entries else entries.get(name)
            if not isinstance(entry, Mapping):
                continue
            if kind not in entry.get("dataTypes", ()):
                raise NotInWebnn(f"this WebNN context has no {op} on {kind} ({name})")
            ranks = entry.get("rankRange")
            if isinstance(ranks, Mapping) and not ranks["min"] <= len(operand.shape) <= ranks["max"]:
                raise NotInWebnn(
                    f"this WebNN context has {op} for ranks {ranks['min']}..{ranks['max']} only, "
                    f"not {len(operand.shape)} ({name})"
                )


def _encode(arg: object) -> Json:
    if isinstance(arg, Operand):
        return arg.ref()
    if isinstance(arg, list | tuple):
        return [_encode(a) for a in arg]
    if isinstance(arg, dict):
        return {k: _encode(v) for k, v in arg.items()}
    assert arg is None or isinstance(arg, bool | int | float | str), arg
    return arg


def _operands(arg: object, name: str) -> list[tuple[str, Operand]]:
    if isinstance(arg, Operand):
        return [(name, arg)]
    if isinstance(arg, list | tuple):
        return [pair for a in arg for pair in _operands(a, name)]
    if isinstance(arg, dict):
        return [pair for key, value in arg.items() for pair in _operands(value, key)]
    return []


class GraphRecorder:
    """The builder calls of one graph; every call checked against ``support``."""

    def __init__(self, support: Support) -> None:
        self.support = support
        self.inputs: list[Operand] = []
        self.nodes: list[dict[str, Json]] = []

    def _next(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> Operand:
        return Operand(len(self.inputs) + len(self.nodes), shape, dtype)

    def input(self, shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> Operand:
        """A graph input holding ``shape``, flat (as buffers travel); all inputs come before any call."""
        assert not self.nodes, "inputs are numbered before the calls"
        flat = Operand(len(self.inputs), (math.prod(shape),), dtype)
        self.support.check("input", [("input", flat)])
        self.inputs.append(flat)
        return flat

    def call(
        self, op: str, args: Sequence[object], shape: tuple[int, ...], dtype: np.dtype[np.generic]
    ) -> Operand:
        """``builder[op](*args)`` giving an operand of ``shape``/``dtype`` (operands may sit in options)."""
        names = _INPUT_NAMES.get(op, ("input",))
        named = [pair for i, arg in enumerate(args) for pair in _operands(arg, names[min(i, len(names) - 1)])]
        out = self._next(shape, dtype)
        self.support.check(op, [*named, ("output", out)])
        self.nodes.append({"op": op, "args": [_encode(a) for a in args]})
        return out

    def constant(self, value: bool | int | float, dtype: np.dtype[np.generic]) -> Operand:
        """A 0-d constant of ``dtype`` (float16 ones are float32 constants cast by the graph)."""
        if dtype == np.float16:
            return self.call("cast", [self.constant(value, np.dtype(np.float32)), "float16"], (), dtype)
        number = np.array(value, dtype=dtype).item()
        if isinstance(number, float) and not math.isfinite(number):
            number = "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")
        out = self._next((), dtype)
        self.nodes.append({"op": "constant", "dataType": data_type(dtype), "shape": [], "values": [number]})
        return out

    def reshape(self, x: Operand, shape: tuple[int, ...]) -> Operand:
        return x if x.shape == shape else self.call("reshape", [x, list(shape)], shape, x.dtype)

    def cast(self, x: Operand, dtype: np.dtype[np.generic]) -> Operand:
        """numpy's ``astype``: to bool means ``!= 0``; bool and uint8 share their WebNN form."""
        if x.dtype == dtype:
            return x
        if dtype == np.bool_:
            return self.call("notEqual", [x, self.constant(0, x.dtype)], x.shape, dtype)
        if data_type(x.dtype) == data_type(dtype):
            return Operand(x.index, x.shape, dtype)
        return self.call("cast", [x, data_type(dtype)], x.shape, dtype)
