"""Creating tensors: from data, filled, ranges, and seeded random values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.hal.registry import get_device
from accelerate_lab.tensor.dtypes import DTypeLike, Scalar, to_numpy_dtype
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["arange", "full", "ones", "random", "tensor", "zeros"]


def _place(array: np.ndarray, device: str | Device, requires_grad: bool = False) -> Tensor:
    out = Tensor._wrap(get_device(device).upload(array), get_device(device))
    if requires_grad:
        if array.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, not {array.dtype.name}")
        out.requires_grad = True
    return out


def tensor(
    data: object, dtype: DTypeLike | None = None, device: str | Device = "cpu", requires_grad: bool = False
) -> Tensor:
    """A tensor from a number, a (nested) list, a numpy array or another tensor (always a copy).

    Without ``dtype``: numpy arrays keep theirs; Python floats become float32 (as in PyTorch),
    Python ints int64, bools bool.

    >>> import accelerate_lab as al
    >>> al.tensor([[1.5, 2.0]]).dtype, al.tensor([1, 2]).dtype
    ('float32', 'int64')
    """
    source = data.numpy() if isinstance(data, Tensor) else data
    if dtype is not None:
        array = np.array(source, dtype=to_numpy_dtype(dtype))
    else:
        array = np.array(source)
        if array.dtype == np.float64 and not isinstance(source, np.ndarray | np.generic):
            array = array.astype(np.float32)
        to_numpy_dtype(array.dtype)  # TypeError for strings, objects, complex numbers
    return _place(array, device, requires_grad)


def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(d) for d in shape)


def full(
    shape: int | Sequence[int],
    value: Scalar,
    dtype: DTypeLike = "float32",
    device: str | Device = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """A tensor filled with ``value``."""
    return _place(np.full(_shape(shape), value, dtype=to_numpy_dtype(dtype)), device, requires_grad)


def zeros(
    shape: int | Sequence[int],
    dtype: DTypeLike = "float32",
    device: str | Device = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of zeros."""
    return full(shape, 0, dtype, device, requires_grad)


def ones(
    shape: int | Sequence[int],
    dtype: DTypeLike = "float32",
    device: str | Device = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ones."""
    return full(shape, 1, dtype, device, requires_grad)


def arange(
    start: Scalar,
    end: Scalar | None = None,
    step: Scalar = 1,
    dtype: DTypeLike | None = None,
    device: str | Device = "cpu",
) -> Tensor:
    """Evenly spaced values in ``[start, end)`` (``arange(n)`` counts ``0..n-1``): int64 when all
    arguments are ints, else float32.

    >>> import accelerate_lab as al
    >>> al.arange(1, 2, 0.25).tolist()
    [1.0, 1.25, 1.5, 1.75]
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange step must not be zero")
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in (start, end, step)) else "float32"
    return _place(np.arange(start, end, step, dtype=to_numpy_dtype(dtype)), device)


def random(
    shape: int | Sequence[int],
    low: float = 0.0,
    high: float = 1.0,
    seed: int | None = None,
    dtype: DTypeLike = "float32",
    device: str | Device = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """Uniform random values in ``[low, high)``; the same ``seed`` gives the same values.

    >>> import accelerate_lab as al
    >>> al.random([2, 2], seed=0).tolist() == al.random([2, 2], seed=0).tolist()
    True
    """
    if not high > low:
        raise ValueError(f"random needs low < high, got low={low}, high={high}")
    values = np.random.default_rng(seed).uniform(low, high, _shape(shape))
    return _place(values.astype(to_numpy_dtype(dtype)), device, requires_grad)
