"""`SharedTensorView`: a window on a shared tensor's storage that copies nothing.

The window is computed by the device's layout kernels (``reshape``, ``getitem``): numpy views
on the cpu; a flat element range is one contiguous span of the buffer, which GPU devices
express as a buffer offset.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import index
from typing import TYPE_CHECKING

from accelerate_lab.errors import ShapeError
from accelerate_lab.sharing._errors import TensorFreedError
from accelerate_lab.sharing._refs import RefCounted
from accelerate_lab.tensor import ops
from accelerate_lab.tensor.dtypes import itemsize
from accelerate_lab.tensor.tensor import Tensor

if TYPE_CHECKING:
    from accelerate_lab.sharing._tensor import SharedTensor

__all__ = ["SharedTensorView"]


@dataclass(frozen=True)
class _Window:
    flat: bool  # a range of the flat storage (True) or a box of the shaped tensor
    key: tuple[builtins.slice, ...]
    shape: tuple[int, ...]


def _window(
    parent: SharedTensor, name: str, offset: int | Sequence[int], size: int | Sequence[int]
) -> _Window:
    extents = (index(size),) if not isinstance(size, Sequence) else tuple(index(s) for s in size)
    if not isinstance(offset, Sequence):
        start, count, total = index(offset), math.prod(extents), math.prod(parent.shape)
        if start < 0 or min(extents, default=0) < 0 or start + count > total:
            raise ShapeError(
                f"view {name!r}: elements [{start}, {start + count}) lie outside {parent.name!r}, "
                f"which has {total} elements"
            )
        return _Window(True, (builtins.slice(start, start + count),), extents)
    starts = tuple(index(o) for o in offset)
    if not len(starts) == len(extents) == len(parent.shape) or any(
        o < 0 or s < 0 or o + s > d for o, s, d in zip(starts, extents, parent.shape, strict=True)
    ):
        raise ShapeError(
            f"view {name!r}: offset {starts} and size {extents} must give one start and extent per axis "
            f"within {parent.name!r}'s shape {parent.shape}"
        )
    return _Window(
        False, tuple(builtins.slice(o, o + s) for o, s in zip(starts, extents, strict=True)), extents
    )


class SharedTensorView(RefCounted):
    """A named window on a `SharedTensor` (see `SharedTensor.create_view`).

    An open view keeps its parent alive (the parent cannot be freed); ``close()`` ends it,
    releasing the references it holds, and after that ``get_data()`` raises. References work as
    on the parent, and each one also holds the parent for the same model.

    >>> import accelerate_lab as al
    >>> st = al.TensorSharingManager().register_shared_tensor("w", data=al.arange(0, 6).reshape(2, 3))
    >>> with st.create_view("col", (0, 1), (2, 1)) as view:
    ...     view.get_data().tolist()
    [[1], [4]]
    """

    __slots__ = ("_closed", "_window", "dtype", "name", "offset", "owner_model", "parent", "size")

    def __init__(
        self,
        parent: SharedTensor,
        name: str,
        offset: int | Sequence[int],
        size: int | Sequence[int],
        owner_model: str | None = None,
    ) -> None:
        self._window = _window(parent, name, offset, size)
        self.parent = parent
        self.name = name
        self.offset = offset
        self.size = size
        self.dtype = parent.dtype
        self.owner_model = owner_model
        super().__init__()
        self._closed = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self._window.shape

    @property
    def reference_count(self) -> int:
        return self._ref_total

    @property
    def references(self) -> dict[str, int]:
        with self.parent._pool.lock:
            return self._ref_dict()

    @property
    def is_closed(self) -> bool:
        return self._closed

    def get_data(self) -> Tensor:
        """The window's data, sharing the parent's memory."""
        with self.parent._pool.lock:
            self._check_open()
            storage = self.parent._live()
            self.parent._touch()
            if self._window.flat:
                return ops.reshape(ops.getitem(storage.flat, self._window.key), self._window.shape)
            return ops.getitem(storage.tensor, self._window.key)

    def get_memory_usage(self) -> int:
        """Bytes the window covers (already counted in the parent's storage, never added again)."""
        return math.prod(self._window.shape) * itemsize(self.dtype)

    def acquire(self, model_name: str) -> None:
        """One more reference for ``model_name``, on the view and on its parent."""
        with self.parent._pool.lock:
            self._check_open()
            self.parent.acquire(model_name)
            self._add_ref(model_name)

    def release(self, model_name: str) -> bool:
        """One reference fewer for ``model_name`` (and on the parent); False when it holds none."""
        with self.parent._pool.lock:
            if not self._remove_ref(model_name):
                return False
            self.parent.release(model_name)
            return True

    def close(self) -> None:
        """Release every reference the view holds and let go of the parent (idempotent)."""
        with self.parent._pool.lock:
            if self._closed:
                return
            for model, held in self._ref_dict().items():
                for _ in range(held):
                    self.parent.release(model)
            self._clear_refs()
            self._closed = True
            self.parent._close_view(self.name)

    def _drop(self, model_name: str) -> int:
        """Forget ``model_name``'s references here (the caller drops them on the parent)."""
        return self._drop_refs(model_name)

    def _check_open(self) -> None:
        if self._closed:
            raise TensorFreedError(f"view {self.name!r} of {self.parent.name!r} is closed; create a new view")

    def __enter__(self) -> SharedTensorView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"refs={self.reference_count}"
        return (
            f"SharedTensorView({self.name!r} of {self.parent.name!r}, offset={self.offset}, "
            f"size={self.size}, shape={self.shape}, {state})"
        )
