"""Storages: the device memory behind shared tensors, made only through the Device protocol.

A storage keeps its data as ``tensor`` (its shape) and, once a view by element offset needs it,
``flat`` (1-D, over the same memory; most storages never need it, and each object a storage holds
costs time when 100,000 of them are freed at once). Buffers this layer obtained from the device
(``allocate``/``upload``) are returned with ``device.free`` when the storage goes; an adopted tensor's
buffer stays with its owner.
Each step is a :class:`Plan` whose size is known before any memory is taken, so the budget can be
enforced first.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal.device import Buffer, Device
from accelerate_lab.tensor import ops
from accelerate_lab.tensor.creation import tensor as make_tensor
from accelerate_lab.tensor.dtypes import DTypeLike, to_numpy_dtype
from accelerate_lab.tensor.tensor import Tensor

if TYPE_CHECKING:
    from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["Plan", "Storage", "plan_adoption", "plan_allocation", "plan_copy", "release"]


@dataclass(eq=False, slots=True)
class Storage:
    """Device memory read by one or more shared tensors (``readers``, oldest first; more than one
    after dedupe).

    ``layout`` (device, dtype and shape) is what dedupe groups by; ``serial`` orders storages by
    creation (dedupe keeps the oldest).

    The readers form a chain through their ``_prev_reader`` and ``_next_reader`` from ``reader`` (the
    oldest; None once none is left) to ``last_reader``: no list per storage (each object costs time
    when 100,000 storages go at once, or dedupe gives 25,000 originals a second reader), and a reader
    joins or leaves in constant time however many share the storage.
    """

    tensor: Tensor
    device: Device
    nbytes: int
    buffer: Buffer | None
    layout: str
    reader: SharedTensor | None = None
    last_reader: SharedTensor | None = None
    serial: int = 0
    _flat: Tensor | None = None

    @property
    def readers(self) -> list[SharedTensor]:
        """The tensors reading this storage, oldest first."""
        found = []
        tensor = self.reader
        while tensor is not None:
            found.append(tensor)
            tensor = tensor._next_reader
        return found

    def add_reader(self, tensor: SharedTensor) -> None:
        """``tensor`` reads this storage from now on (the newest reader)."""
        last = self.last_reader
        tensor._prev_reader = last
        if last is None:
            self.reader = tensor
        else:
            last._next_reader = tensor
        self.last_reader = tensor

    def remove_reader(self, tensor: SharedTensor) -> bool:
        """``tensor`` (a reader) reads this storage no more; True when no tensor reads it now."""
        before, after = tensor._prev_reader, tensor._next_reader
        if before is None:
            assert self.reader is tensor, "removing a tensor that does not read this storage"
            self.reader = after
        else:
            before._next_reader = after
            tensor._prev_reader = None
        if after is None:
            self.last_reader = before
        else:
            after._prev_reader = before
            tensor._next_reader = None
        return self.reader is None

    @property
    def flat(self) -> Tensor:
        """The data as one axis, over the same memory (made on first use)."""
        if self._flat is None:
            self._flat = ops.reshape(self.tensor, (-1,))
        return self._flat


@dataclass(frozen=True)
class Plan:
    """A storage to make: its size, shape and dtype now, the memory when ``make`` runs."""

    nbytes: int
    shape: tuple[int, ...]
    dtype: str
    make: Callable[[], Storage]


def _storage(t: Tensor, device: Device, buffer: Buffer | None) -> Storage:
    """A storage of ``t`` itself, which must be contiguous: memory this layer made or copied (no extra
    array or tensor per storage: each costs time when 100,000 storages are freed at once)."""
    layout = sys.intern(f"{device.name} {t.dtype} {t.shape}")  # one object per layout, not per storage
    return Storage(t, device, t.nbytes, buffer, layout)


def _contiguous(t: Tensor) -> Tensor:
    """``t``, or a copy of a strided source (a reshape is a view of contiguous memory)."""
    return ops.reshape(ops.reshape(t, (-1,)), t.shape)


def _uploaded(host: np.ndarray, device: Device) -> Storage:
    buffer = device.upload(host)
    return _storage(Tensor._wrap(buffer, device), device, buffer)


def plan_allocation(device: Device, shape: Sequence[int], dtype: DTypeLike) -> Plan:
    """Zero-filled memory of ``shape`` and ``dtype`` on ``device``."""
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise ShapeError(f"shape {dims} has a negative dimension")
    np_dtype = to_numpy_dtype(dtype)

    def make() -> Storage:
        buffer = device.allocate((math.prod(dims),), np_dtype)
        return _storage(ops.reshape(Tensor._wrap(buffer, device), dims), device, buffer)

    return Plan(math.prod(dims) * np_dtype.itemsize, dims, np_dtype.name, make)


def plan_adoption(device: Device, data: object, shape: Sequence[int] | None, dtype: DTypeLike | None) -> Plan:
    """``data`` (a Tensor, numpy array or nested list) as a storage on ``device``.

    A Tensor already on ``device`` with the right dtype is shared without a copy; anything else
    is converted or copied once.
    """
    # the copy `tensor` makes of a list, a number or a C-ordered array is used as it is; it keeps
    # another array's memory order, and a Tensor is the caller's memory: those may be strided
    contiguous = isinstance(data, list | tuple | int | float) or (
        isinstance(data, np.ndarray) and data.flags.c_contiguous
    )
    source = data.detach() if isinstance(data, Tensor) else make_tensor(data, dtype=dtype)
    np_dtype = to_numpy_dtype(source.dtype if dtype is None else dtype)
    dims = source.shape if shape is None else tuple(int(d) for d in shape)
    if math.prod(dims) != source.size:
        raise ShapeError(f"data of shape {source.shape} ({source.size} elements) does not fit shape {dims}")

    def make() -> Storage:
        t = source if source.dtype == np_dtype.name else source.astype(np_dtype)
        t = t if t.shape == dims else t.reshape(dims)
        if t.device == device.name:
            return _storage(t if contiguous else _contiguous(t), device, None)
        return _uploaded(np.ascontiguousarray(t.numpy()), device)

    return Plan(source.size * np_dtype.itemsize, dims, np_dtype.name, make)


def plan_copy(source: Storage, device: Device) -> Plan:
    """A copy of ``source``'s data in new memory on ``device`` (the same device included)."""

    def make() -> Storage:
        return _uploaded(np.array(source.tensor.numpy(), order="C", copy=True), device)

    return Plan(source.nbytes, source.tensor.shape, source.tensor.dtype, make)


def release(storage: Storage) -> None:
    """Give the storage's memory back to its device (adopted buffers stay with their owner)."""
    if storage.buffer is not None:
        storage.device.free(storage.buffer)
        storage.buffer = None
