"""Tensors to and from the wire: numpy arrays, `accelerate_lab.Tensor`, or anything with `__array__`
go in; `accelerate_lab.Tensor` comes out (numpy when the dtype is one Tensor does not hold)."""

from __future__ import annotations

import importlib
from typing import Any, cast

import numpy as np

from accelerate_lab.api._types import ArrayLike

__all__ = ["as_numpy", "to_tensor"]


def as_numpy(value: ArrayLike | object) -> np.ndarray[Any, np.dtype[Any]]:
    return np.asarray(value)


def to_tensor(array: np.ndarray[Any, np.dtype[Any]]) -> ArrayLike:
    """An `accelerate_lab.Tensor` holding `array` when the tensor package supports its dtype."""
    try:
        module = importlib.import_module("accelerate_lab.tensor")
        dtypes = cast(tuple[str, ...], module.DTYPES)
    except (ImportError, AttributeError):
        return array
    if array.dtype.name not in dtypes:
        return array
    return cast(ArrayLike, module.tensor(array))
