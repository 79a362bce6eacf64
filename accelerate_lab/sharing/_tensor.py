"""`SharedTensor`: a real tensor on a storage device, reference-counted per model."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from accelerate_lab.hal.registry import get_device
from accelerate_lab.sharing._errors import TensorFreedError
from accelerate_lab.sharing._refs import RefCounted
from accelerate_lab.sharing._storage import Storage, plan_copy
from accelerate_lab.sharing._view import SharedTensorView
from accelerate_lab.tensor.tensor import Tensor

if TYPE_CHECKING:
    from accelerate_lab.sharing._pool import Pool

__all__ = ["SharedTensor"]


class SharedTensor(RefCounted):
    """A tensor several models use, on one storage device; made by `TensorSharingManager`.

    References are counted per model: ``acquire(model)`` adds one, ``release(model)`` removes
    one and returns False (changing nothing) when that model holds none, so a count is never
    negative; a model that acquires twice must release twice. A tensor can be freed (evicted or
    freed by ``optimize_memory_usage``) only when no model holds it, it is not pinned, no view of
    it is open and it has been unused for the grace period; after that its data is unreadable
    (:class:`TensorFreedError`).

    >>> import accelerate_lab as al
    >>> mgr = al.TensorSharingManager(max_memory_mb=16)
    >>> st = mgr.register_shared_tensor("emb", [2, 4], producer_model="bert")
    >>> st.acquire("clip"); st.reference_count, st.get_memory_usage()
    (2, 32)
    >>> st.release("clip"), st.release("clip"), st.reference_count
    (True, False, 1)
    """

    __slots__ = (
        "__weakref__",
        "_fate",
        "_last_used",
        "_next_reader",
        "_pinned",
        "_pool",
        "_prev_reader",
        "_storage",
        "_views",
        "dtype",
        "grace_period_s",
        "name",
        "producer_model",
        "shape",
        "storage_type",
        "tensor_type",
    )

    def __init__(
        self,
        name: str,
        storage: Storage,
        pool: Pool,
        *,
        producer_model: str | None,
        tensor_type: str | None,
        grace_period_s: float,
    ) -> None:
        self.name = name
        self.shape = storage.tensor.shape
        self.dtype = sys.intern(storage.tensor.dtype)  # one string, not one per tensor to free later
        self.storage_type = storage.device.name
        self.producer_model = producer_model
        self.tensor_type = tensor_type
        self.grace_period_s = grace_period_s
        super().__init__()
        self._prev_reader: SharedTensor | None = None  # the storage's reader chain (see Storage)
        self._next_reader: SharedTensor | None = None
        storage.add_reader(self)
        self._storage: Storage | None = storage
        self._pool = pool
        self._views: dict[str, SharedTensorView] | None = None  # made by the first view
        self._pinned = False
        self._last_used = time.monotonic()
        self._fate = ""

    # ---- state ----------------------------------------------------------------------------
    @property
    def reference_count(self) -> int:
        """References held by all models together."""
        return self._ref_total

    @property
    def references(self) -> dict[str, int]:
        """References per model."""
        with self._pool.lock:
            return self._ref_dict()

    @property
    def models(self) -> tuple[str, ...]:
        """The models holding at least one reference."""
        with self._pool.lock:
            return self._ref_models()

    @property
    def is_pinned(self) -> bool:
        return self._pinned

    @property
    def is_freed(self) -> bool:
        return self._storage is None

    @property
    def views(self) -> dict[str, SharedTensorView]:
        """The open views, by name."""
        with self._pool.lock:
            return {} if self._views is None else dict(self._views)

    @property
    def data(self) -> Tensor:
        """The tensor itself (no copy); :class:`TensorFreedError` once freed."""
        with self._pool.lock:
            storage = self._live()
            self._touch()
            return storage.tensor

    def get_memory_usage(self) -> int:
        """Bytes of this tensor's storage (views add none); 0 once freed."""
        storage = self._storage
        return 0 if storage is None else storage.nbytes

    def can_be_freed(self) -> bool:
        """True when unreferenced, unpinned, without open views and unused for ``grace_period_s``."""
        with self._pool.lock:
            return self._freeable(time.monotonic())

    # ---- references -----------------------------------------------------------------------
    def acquire(self, model_name: str) -> None:
        """One more reference for ``model_name``."""
        pool = self._pool
        with pool.lock:
            storage = self._live()
            self._add_ref(model_name)
            self._touch()
            pool.log.record("acquire", self.name, model_name, storage.nbytes, self.storage_type)

    def release(self, model_name: str) -> bool:
        """One reference fewer for ``model_name``; False when it holds none."""
        pool = self._pool
        with pool.lock:
            if not self._remove_ref(model_name):
                return False
            self._touch()
            pool.log.record("release", self.name, model_name, self.get_memory_usage(), self.storage_type)
            return True

    def pin(self) -> None:
        """Keep this tensor in memory whatever its references."""
        with self._pool.lock:
            self._live()
            self._pinned = True

    def unpin(self) -> None:
        """Let this tensor be freed again once unreferenced."""
        with self._pool.lock:
            self._pinned = False
            if self._storage is not None:
                self._touch()

    # ---- views and copies -----------------------------------------------------------------
    def create_view(
        self, name: str, offset: int | Sequence[int], size: int | Sequence[int], model_name: str | None = None
    ) -> SharedTensorView:
        """A zero-copy window on this tensor; it keeps the tensor alive until closed.

        ``offset`` an int: elements ``offset .. offset + prod(size)`` of the row-major storage,
        shaped ``size`` (an int or a shape). ``offset`` a sequence: a box with one start and one
        extent per axis. With ``model_name`` the view is acquired for that model, and
        ``release_model_tensors(model_name)`` closes it.

        >>> import accelerate_lab as al
        >>> st = al.TensorSharingManager().register_shared_tensor("w", data=al.arange(0, 6))
        >>> st.create_view("tail", 4, 2).get_data().tolist()
        [4, 5]
        """
        pool = self._pool
        with pool.lock:
            storage = self._live()
            views = self._views
            if views is not None and name in views:
                raise ValueError(
                    f"{self.name!r} already has an open view named {name!r}; close it or pick another name"
                )
            view = SharedTensorView(self, name, offset, size, model_name)
            if views is None:
                self._views = {name: view}
            else:
                views[name] = view
            self._touch()
            pool.log.record("view", self.name, model_name, view.get_memory_usage(), storage.device.name, name)
            if model_name is not None:
                view.acquire(model_name)
            return view

    def copy_to(self, storage_type: str, name: str | None = None) -> SharedTensor:
        """A copy of the data in new memory on ``storage_type``, registered as ``name``.

        ``name`` defaults to ``"<name>_<storage_type>"``; the copy counts against that device's budget
        and starts with a reference for this tensor's producer model.
        """
        pool = self._pool
        device = get_device(storage_type)
        with pool.lock:
            storage = self._live()
            self._touch()
            return pool.admit(
                name or f"{self.name}_{device.name}",
                device,
                plan_copy(storage, device),
                producer=self.producer_model,
                consumers=(),
                tensor_type=self.tensor_type,
                kind="copy",
                source=self.name,
            )

    # ---- used by the manager and views ------------------------------------------------------
    def _freeable(self, now: float) -> bool:
        """`can_be_freed` for callers holding the lock (``now`` from ``time.monotonic``)."""
        return (
            self._storage is not None
            and not self._ref_total
            and not self._pinned
            and not self._views
            and (not self.grace_period_s or now - self._last_used >= self.grace_period_s)
        )  # without a grace period, no read of `_last_used` (one object fewer to visit per tensor)

    def _live(self) -> Storage:
        storage = self._storage
        if storage is None:
            raise TensorFreedError(
                f"shared tensor {self.name!r} was {self._fate}; register it again to use it"
            )
        return storage

    def _touch(self) -> None:
        """Mark as used now: the most recently used of the pool's unreferenced tensors when no model
        holds it (every change of references touches, so that list stays exact)."""
        self._last_used = time.monotonic()
        unreferenced = self._pool.unreferenced
        unreferenced.pop(self.name, None)
        if not self._ref_total:
            unreferenced[self.name] = self

    def _open_views(self) -> list[SharedTensorView]:
        return [] if self._views is None else list(self._views.values())

    def _close_view(self, name: str) -> None:
        views = self._views
        assert views is not None, "closing a view that is not open"
        del views[name]
        if not views:
            self._views = None
        self._touch()

    def _take_storage(self, fate: str) -> Storage | None:
        """Give up the storage (the caller checked `_freeable`, so no model holds this tensor): the
        storage, for the caller to release, when no other tensor reads it; else None."""
        storage = self._storage
        assert storage is not None, "freeing a freed tensor"
        self._storage = None
        self._fate = fate
        return storage if storage.remove_reader(self) else None

    def _share_storage(self, storage: Storage) -> Storage:
        """Read ``storage`` from now on (identical contents); the old one, for the caller to release
        when no other tensor reads it (dedupe only reads live storages)."""
        old = self._storage
        assert old is not None, "merging a freed tensor"
        old.remove_reader(self)
        storage.add_reader(self)
        self._storage = storage
        return old

    def __repr__(self) -> str:
        state = f"freed ({self._fate})" if self._storage is None else f"refs={self.reference_count}"
        pinned = ", pinned" if self._pinned else ""
        return (
            f"SharedTensor({self.name!r}, shape={self.shape}, dtype={self.dtype}, "
            f"storage={self.storage_type}, {state}{pinned}, producer={self.producer_model!r})"
        )
