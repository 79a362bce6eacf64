"""The dtypes a Tensor can hold, and how they combine.

Promotion follows numpy's rules (NEP 50, numpy >= 2): two tensors promote to
``numpy.result_type`` of their dtypes (``float32 + int64 -> float64``, ``int32 + float16 ->
float64``, ``uint8 + int32 -> int32``), and a Python scalar is "weak": it takes the tensor's
dtype where its kind fits (``float32 tensor * 2.5 -> float32``, ``int32 tensor + 1.5 -> float64``).

>>> result_dtype("float32", "int64")
'float64'
>>> result_dtype("float16", 2.5)
'float16'
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

__all__ = ["DTYPES", "DTypeLike", "Scalar", "dtype_name", "itemsize", "result_dtype", "to_numpy_dtype"]

DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "int32", "int64", "uint8", "bool")
"""The dtype names a `Tensor` holds."""
Scalar: TypeAlias = bool | int | float
DTypeLike: TypeAlias = "str | np.dtype[np.generic] | type"

_NUMPY: dict[str, np.dtype[np.generic]] = {name: np.dtype(name) for name in DTYPES}


def to_numpy_dtype(dtype: DTypeLike) -> np.dtype[np.generic]:
    """The numpy dtype for a dtype name, numpy dtype or scalar type; ``TypeError`` if unsupported."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    found = _NUMPY.get(name)
    if found is None:
        raise TypeError(f"unsupported dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    return found


def dtype_name(dtype: DTypeLike) -> str:
    """The canonical name (``"float32"``, ...) of a supported dtype."""
    return to_numpy_dtype(dtype).name


def itemsize(dtype: DTypeLike) -> int:
    """Bytes per element."""
    return to_numpy_dtype(dtype).itemsize


def result_dtype(*operands: DTypeLike | Scalar) -> str:
    """The dtype an elementwise op on these operands produces (numpy's promotion rules)."""
    args = [op if isinstance(op, bool | int | float) else to_numpy_dtype(op) for op in operands]
    return np.result_type(*args).name
