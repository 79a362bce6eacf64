"""`Tensor`: an n-dimensional array on a device, with numpy semantics and optional gradients."""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from accelerate_lab.errors import DeviceError, ShapeError
from accelerate_lab.hal.device import Buffer, Device
from accelerate_lab.hal.registry import get_device
from accelerate_lab.tensor import autograd
from accelerate_lab.tensor.dtypes import DTypeLike, Scalar, to_numpy_dtype

if TYPE_CHECKING:
    from accelerate_lab.tensor.autograd import Node

__all__ = ["Index", "Tensor"]

Index = int | slice | None | type(Ellipsis) | tuple[Any, ...]
_BASIC = (int, slice, type(None), type(Ellipsis), np.integer)


def normalize_index(key: object) -> tuple[object, ...]:
    """A basic-indexing key as a tuple; ``TypeError`` for anything numpy would treat as advanced."""
    items = key if isinstance(key, tuple) else (key,)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, _BASIC):
            raise TypeError(
                f"only basic indexing (ints, slices, None, ...) is supported, got {type(item).__name__}; "
                "use al.embedding for gathers and al.where for masks"
            )
    return tuple(int(i) if isinstance(i, np.integer) else i for i in items)


@functools.cache
def _dtype_name(dtype: np.dtype[Any]) -> str:
    """``dtype.name``, remembered: numpy works it out in Python on every access (~1.5 us)."""
    return dtype.name


class Tensor:
    """An n-dimensional array on a device (``cpu`` by default).

    ``data`` may be a flat or nested list or a numpy array; its element count must match
    ``shape``. Without data the tensor is zero-filled.

    >>> import accelerate_lab as al
    >>> t = al.Tensor([2, 3], data=[1, 2, 3, 4, 5, 6])
    >>> t.shape, t.dtype, t.device
    ((2, 3), 'float32', 'cpu')
    >>> t.get(1, -1)
    6.0
    """

    __slots__ = ("__weakref__", "_buf", "_device", "_node", "grad", "requires_grad")
    __array_priority__ = 1000  # numpy defers `ndarray + Tensor` to Tensor.__radd__

    _buf: Buffer
    _device: Device
    _node: Node | None
    grad: Tensor | None
    requires_grad: bool

    def __init__(
        self,
        shape: Sequence[int],
        data: object = None,
        dtype: DTypeLike = "float32",
        device: str | Device = "cpu",
        requires_grad: bool = False,
    ) -> None:
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ShapeError(f"shape {shape} has a negative dimension")
        np_dtype = to_numpy_dtype(dtype)
        if data is None:
            array = np.zeros(shape, dtype=np_dtype)
        else:
            array = np.asarray(data.numpy() if isinstance(data, Tensor) else data, dtype=np_dtype)
            if array.size != math.prod(shape):
                raise ValueError(
                    f"data has {array.size} elements (shape {array.shape}) but shape {shape} needs "
                    f"{math.prod(shape)}"
                )
            array = array.reshape(shape)
        dev = get_device(device)
        self._buf = dev.upload(array)
        self._device = dev
        self._node = None
        self.grad = None
        self.requires_grad = requires_grad
        if requires_grad and np_dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, not {np_dtype.name}")

    @classmethod
    def _wrap(cls, buf: Buffer, device: Device) -> Tensor:
        """A tensor around an existing device buffer (no copy)."""
        t = cls.__new__(cls)
        t._buf = buf
        t._device = device
        t._node = None
        t.grad = None
        t.requires_grad = False
        return t

    # ---- properties -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._buf.shape)

    @property
    def dtype(self) -> str:
        return _dtype_name(self._buf.dtype)

    @property
    def device(self) -> str:
        return self._device.name

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self._buf.shape)

    @property
    def rank(self) -> int:
        return len(self._buf.shape)

    ndim = rank

    @property
    def nbytes(self) -> int:
        return self.size * self._buf.dtype.itemsize

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def T(self) -> Tensor:
        """The transpose (all axes reversed)."""
        return ops.transpose(self)

    # ---- data in and out --------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a numpy array (on the cpu device: the same memory, no copy)."""
        return self._device.download(self._buf)

    async def numpy_async(self, timeout: float | None = None) -> np.ndarray:
        """The data as a numpy array, awaiting devices that deliver it later (``browser:webgpu``).

        In a notebook: ``out = await t.numpy_async()``. On other devices it is ``t.numpy()``.
        """
        download_async = getattr(self._device, "download_async", None)
        if download_async is None:
            return self.numpy()
        array: np.ndarray = await download_async(self._buf, timeout)
        return array

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        array = self.numpy()
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy else array

    def __dlpack__(self, **kwargs: Any) -> Any:
        if self._device.name != "cpu":
            raise DeviceError(
                f"DLPack export needs a cpu tensor; call .to('cpu') on this {self.device} tensor"
            )
        return self.numpy().__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        if self._device.name != "cpu":
            raise DeviceError(
                f"DLPack export needs a cpu tensor; call .to('cpu') on this {self.device} tensor"
            )
        return (1, 0)  # kDLCPU, device 0

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def item(self) -> Scalar:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        value: Scalar = self.numpy().reshape(()).item()
        return value

    def to(self, device: str | Device) -> Tensor:
        """A copy on another device (the same tensor if it is already there); gradients flow through."""
        target = get_device(device)
        if target is self._device:
            return self
        out = Tensor._wrap(target.upload(np.ascontiguousarray(self.numpy())), target)
        if self.requires_grad and autograd.is_grad_enabled():
            source = self._device
            out.requires_grad = True
            out._node = autograd.Node("to", (self,), lambda g: (g.to(source),))
        return out

    def clone(self) -> Tensor:
        """A copy with its own storage (gradients flow through)."""
        return ops.clone(self)

    def detach(self) -> Tensor:
        """The same storage, cut from the graph."""
        return Tensor._wrap(self._buf, self._device)

    def zeros(self) -> Tensor:
        """A zero tensor of the same shape, dtype and device."""
        return Tensor._wrap(self._device.allocate(self.shape, self._buf.dtype), self._device)

    def ones(self) -> Tensor:
        """A ones tensor of the same shape, dtype and device."""
        return Tensor._wrap(self._device.upload(np.ones(self.shape, self._buf.dtype)), self._device)

    # ---- element access ---------------------------------------------------------------------
    def _checked_position(self, idx: tuple[int, ...]) -> tuple[int, ...]:
        if len(idx) != self.rank:
            raise IndexError(f"get/set need {self.rank} indices for shape {self.shape}, got {len(idx)}")
        for axis, (i, size) in enumerate(zip(idx, self.shape, strict=True)):
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {size}")
        return tuple(int(i) for i in idx)

    def get(self, *idx: int) -> Scalar:
        """One element as a Python number; negative indices count from the end."""
        position = self._checked_position(idx)
        value: Scalar = self._device.download(
            self._device.run("getitem", [self._buf], {"index": position})
        ).item()
        return value

    def set(self, value: Scalar, *idx: int) -> None:
        """Write one element in place."""
        self[self._checked_position(idx)] = value

    def __getitem__(self, key: object) -> Tensor:
        return ops.getitem(self, key)

    def __setitem__(self, key: object, value: Tensor | Scalar) -> None:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(
                "in-place assignment into a tensor that requires grad; wrap it in al.no_grad()"
            )
        if isinstance(value, Tensor) and value._device is not self._device:
            raise DeviceError(f"cannot assign a {value.device} tensor into a {self.device} tensor; use .to()")
        arg = value._buf if isinstance(value, Tensor) else value
        self._device.run("setitem", [self._buf, arg], {"index": normalize_index(key)})

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self) -> bool:
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # ---- autograd ---------------------------------------------------------------------------
    def backward(self, gradient: Tensor | None = None) -> None:
        """Accumulate gradients into the ``.grad`` of every leaf this tensor depends on."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad (no input had requires_grad=True)"
            )
        if gradient is None:
            if self.size != 1:
                raise ValueError(f"backward() needs a gradient for a non-scalar tensor of shape {self.shape}")
            gradient = self.ones()
        elif gradient.shape != self.shape:
            raise ShapeError(f"gradient shape {gradient.shape} does not match tensor shape {self.shape}")
        autograd.backward(self, gradient)

    # ---- display ----------------------------------------------------------------------------
    def _values_text(self) -> str:
        try:
            values = self.numpy()
        except DeviceError as error:  # a browser tensor whose data has not arrived yet
            return f"<data on {self.device}: {error}>"
        return np.array2string(
            values, threshold=8, edgeitems=2, precision=4, separator=", ", prefix="Tensor("
        )

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        meta = f"shape={self.shape}, dtype={self.dtype}, device={self.device}{grad}"
        return f"Tensor({self._values_text()}, {meta})"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        summary = f"Tensor shape={self.shape} dtype={self.dtype} device={self.device}"
        if self.requires_grad:
            summary += " requires_grad"
        return (
            '<div class="accelerate-lab-tensor">'
            f"<code>{html.escape(summary)}</code>"
            f'<pre style="margin:2px 0">{html.escape(self._values_text())}</pre></div>'
        )

    # ---- operators and method forms (defined in ops) -----------------------------------------
    __hash__ = object.__hash__

    def __add__(self, other: Tensor | Scalar) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Tensor | Scalar) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Tensor | Scalar) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Tensor | Scalar) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Tensor | Scalar) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Tensor | Scalar) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Tensor | Scalar) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Tensor | Scalar) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Tensor | Scalar) -> Tensor:
        return ops.pow(self, other)

    def __rpow__(self, other: Tensor | Scalar) -> Tensor:
        return ops.pow(other, self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Tensor) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        return ops.eq(self, other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        return ops.ne(self, other)  # type: ignore[arg-type]

    def __lt__(self, other: Tensor | Scalar) -> Tensor:
        return ops.lt(self, other)

    def __le__(self, other: Tensor | Scalar) -> Tensor:
        return ops.le(self, other)

    def __gt__(self, other: Tensor | Scalar) -> Tensor:
        return ops.gt(self, other)

    def __ge__(self, other: Tensor | Scalar) -> Tensor:
        return ops.ge(self, other)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        dims = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return ops.reshape(self, dims)  # type: ignore[arg-type]

    def transpose(self, *axes: int) -> Tensor:
        return ops.transpose(self, axes or None)

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        return ops.flatten(self, start_axis, end_axis)

    def squeeze(self, axis: int | Sequence[int] | None = None) -> Tensor:
        return ops.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        return ops.unsqueeze(self, axis)

    def astype(self, dtype: DTypeLike) -> Tensor:
        return ops.cast(self, dtype)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis, keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis, keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis, keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.min(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return ops.argmax(self, axis, keepdims)

    def var(
        self, axis: int | Sequence[int] | None = None, keepdims: bool = False, correction: int = 0
    ) -> Tensor:
        return ops.var(self, axis, keepdims, correction)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def softmax(self, axis: int = -1) -> Tensor:
        return ops.softmax(self, axis)


from accelerate_lab.tensor import ops  # noqa: E402  (ops need Tensor defined first)
