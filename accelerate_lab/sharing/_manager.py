"""`TensorSharingManager`: shared tensors by name, within a memory budget per storage device."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from accelerate_lab.hal.registry import get_device
from accelerate_lab.sharing._analysis import analyze, model_usage, recommend, tensor_usage, unshared_bytes
from accelerate_lab.sharing._dedupe import duplicate_storages
from accelerate_lab.sharing._events import EventKind, Listener, SharingEvent
from accelerate_lab.sharing._ledger import MemoryCounters, format_bytes
from accelerate_lab.sharing._pool import Pool, why_held
from accelerate_lab.sharing._reports import (
    ModelUsage,
    OptimizationResult,
    Recommendation,
    SharingAnalysis,
    SharingStats,
    TensorUsage,
)
from accelerate_lab.sharing._storage import plan_adoption, plan_allocation
from accelerate_lab.sharing._tensor import SharedTensor
from accelerate_lab.sharing._view import SharedTensorView
from accelerate_lab.tensor.dtypes import DTypeLike

__all__ = ["TensorSharingManager"]


class TensorSharingManager:
    """Tensors shared by name between models, within ``max_memory_mb`` on each storage device.

    ``max_memory_mb`` is one budget for every device, a ``{device: MB}`` mapping (devices not named
    are unlimited), or None. An allocation that would exceed its device's budget first evicts
    freeable tensors (see `SharedTensor.can_be_freed`), least recently used first, and raises
    :class:`~accelerate_lab.MemoryBudgetExceeded` when that is not enough (evicting nothing then).
    Every change is an event (``events()``, ``subscribe(listener)``); all methods are thread-safe.

    >>> import accelerate_lab as al, numpy as np
    >>> mgr = al.TensorSharingManager(max_memory_mb=1)
    >>> weights = al.random([256, 256], seed=0)                    # 256 KiB of a model's weights
    >>> st = mgr.register_shared_tensor("bert.word_embeddings", data=weights, producer_model="bert")
    >>> mgr.share_tensor_between_models("bert.word_embeddings", "bert", ["clip-text"])
    >>> np.shares_memory(st.data.numpy(), weights.numpy())         # the model's memory, no copy
    True
    >>> mgr.get_stats().saved_bytes                                 # clip-text holds no second copy
    262144
    """

    def __init__(
        self,
        max_memory_mb: float | Mapping[str, float] | None = None,
        *,
        grace_period_s: float = 0.0,
        max_events: int = 10_000,
    ) -> None:
        self._pool = Pool(max_memory_mb, grace_period_s, max_events)
        self._hits = 0
        self._misses = 0

    # ---- registering and finding --------------------------------------------------------------
    def register_shared_tensor(
        self,
        name: str,
        shape: Sequence[int] | None = None,
        storage_type: str = "cpu",
        producer_model: str | None = None,
        consumer_models: Iterable[str] | None = None,
        dtype: DTypeLike | None = None,
        *,
        data: object = None,
        tensor_type: str | None = None,
    ) -> SharedTensor:
        """Register ``name``: zero-filled memory of ``shape`` and ``dtype`` (float32 by default), or ``data``.

        ``data`` (an ``al.Tensor``, numpy array or nested list) is how model loaders share weights
        they already hold: a Tensor already on ``storage_type`` is shared without a copy, anything
        else is copied there once; ``shape`` and ``dtype`` then default to the data's. The producer
        and each consumer model get one reference. ``tensor_type`` (``"text_embedding"``, ...) feeds
        the sharing analysis. ``ValueError`` if the name is taken; ``MemoryBudgetExceeded`` if it
        cannot fit.

        >>> import accelerate_lab as al
        >>> mgr = al.TensorSharingManager()
        >>> st = mgr.register_shared_tensor("emb", [1, 768], producer_model="bert", consumer_models=["t5"])
        >>> st.references, st.get_memory_usage()
        ({'bert': 1, 't5': 1}, 3072)
        """
        device = get_device(storage_type)
        if data is not None:
            plan = plan_adoption(device, data, shape, dtype)
        elif shape is None:
            raise ValueError(f"register_shared_tensor({name!r}) needs a shape, or data to share")
        else:
            plan = plan_allocation(device, shape, "float32" if dtype is None else dtype)
        return self._pool.admit(
            name,
            device,
            plan,
            producer=producer_model,
            consumers=consumer_models or (),
            tensor_type=tensor_type,
        )

    def get_shared_tensor(self, name: str, model_name: str | None = None) -> SharedTensor:
        """The tensor ``name``, acquired for ``model_name`` when given; ``KeyError`` if absent."""
        with self._pool.lock:
            tensor = self._pool.tensors.get(name)
            if tensor is None:
                self._misses += 1
                raise KeyError(self._missing(name))
            self._hits += 1
            if model_name is None:
                tensor._touch()
            else:
                tensor.acquire(model_name)
            return tensor

    def create_tensor_view(
        self,
        tensor_name: str,
        view_name: str,
        offset: int | Sequence[int],
        size: int | Sequence[int],
        model_name: str | None = None,
    ) -> SharedTensorView:
        """A zero-copy view of ``tensor_name`` (see `SharedTensor.create_view`)."""
        with self._pool.lock:
            return self._get(tensor_name).create_view(view_name, offset, size, model_name)

    def share_tensor_between_models(
        self, tensor_name: str, from_model: str, to_models: Iterable[str]
    ) -> None:
        """Give each of ``to_models`` that does not hold ``tensor_name`` yet one reference to it.

        ``from_model`` must be the producer or hold a reference (``ValueError`` otherwise).
        """
        with self._pool.lock:
            tensor = self._get(tensor_name)
            if from_model != tensor.producer_model and not tensor._refs_of(from_model):
                holders = ", ".join(tensor._ref_models()) or "no model"
                raise ValueError(
                    f"model {from_model!r} does not hold {tensor_name!r} (held by {holders}); "
                    "share it from its producer or a holder"
                )
            for model in to_models:
                if not tensor._refs_of(model):
                    tensor.acquire(model)

    def release_model_tensors(self, model_name: str) -> int:
        """Drop every reference ``model_name`` holds (on tensors and views) and close the views it
        created that are left unreferenced; how many tensors it held. Nothing is freed until
        memory is needed or ``optimize_memory_usage()`` runs.
        """
        pool = self._pool
        with pool.lock:
            released = 0
            for tensor in list(pool.tensors.values()):
                for view in tensor._open_views():
                    view._drop(model_name)
                    if view.owner_model == model_name and not view.reference_count:
                        view.close()
                if tensor._drop_refs(model_name):
                    released += 1
                    tensor._touch()
                    pool.log.record(
                        "release", tensor.name, model_name, tensor.get_memory_usage(), tensor.storage_type
                    )
            return released

    def free_shared_tensor(self, name: str) -> int:
        """Free ``name`` now; the bytes released. ``ValueError`` (saying why) if it cannot be freed."""
        with self._pool.lock:
            tensor = self._get(name)
            if not tensor.can_be_freed():
                raise ValueError(
                    f"{name!r} cannot be freed: {why_held(tensor)}; release, unpin or close it first"
                )
            return self._pool.free([tensor], "free", "freed by free_shared_tensor()")[1]

    def __contains__(self, name: object) -> bool:
        return name in self._pool.tensors

    def __len__(self) -> int:
        return len(self._pool.tensors)

    # ---- optimising ---------------------------------------------------------------------------
    def optimize_memory_usage(self) -> OptimizationResult:
        """Free every freeable tensor, then let tensors with identical contents share one storage.

        Merged tensors keep their names, references and views; they read the oldest storage of
        their group (so writing through one now changes the others: treat shared weights as read-only).
        """
        pool = self._pool
        with pool.lock:
            initial = pool.ledger.total().current_bytes
            freed_names, freed = pool.free(pool.freeable(), "free", "freed by optimize_memory_usage()")
            merged, merged_bytes = pool.merge(duplicate_storages(pool.layouts))
            final = pool.ledger.total().current_bytes
            return OptimizationResult(
                initial_bytes=initial,
                final_bytes=final,
                freed_bytes=freed,
                merged_bytes=merged_bytes,
                freed_tensors=tuple(freed_names),
                merged_tensors=tuple(merged),
                reduction_percent=100.0 * (initial - final) / initial if initial else 0.0,
                remaining_tensors=len(pool.tensors),
            )

    # ---- analysis -----------------------------------------------------------------------------
    def analyze_sharing_opportunities(self) -> SharingAnalysis:
        """Tensor types that two or more active models could share (from the tensor-type table,
        see `register_tensor_type`), and groups of tensors with identical contents."""
        with self._pool.lock:
            return analyze(list(self._pool.tensors.values()), duplicate_storages(self._pool.layouts))

    def get_tensor_memory_usage(self) -> dict[str, TensorUsage]:
        """Memory, holders and views of each tensor, by name."""
        with self._pool.lock:
            return tensor_usage(list(self._pool.tensors.values()))

    def get_model_memory_usage(self) -> dict[str, ModelUsage]:
        """The memory each model holds (exclusive and shared), by model name."""
        with self._pool.lock:
            return model_usage(list(self._pool.tensors.values()))

    def get_optimization_recommendations(self) -> list[Recommendation]:
        """Concrete actions (free, deduplicate, unpin, share) with the bytes each would save."""
        with self._pool.lock:
            tensors = list(self._pool.tensors.values())
            return recommend(tensors, analyze(tensors, duplicate_storages(self._pool.layouts)))

    def get_stats(self) -> SharingStats:
        """Counts, cache hits, the bytes held and saved by sharing, and counters per device."""
        pool = self._pool
        with pool.lock:
            tensors = list(pool.tensors.values())
            models = model_usage(tensors)
            current = pool.ledger.total().current_bytes
            unshared = unshared_bytes(tensors)
            return SharingStats(
                tensors=len(tensors),
                views=sum(len(t._views or ()) for t in tensors),
                models=tuple(models),
                cache_hits=self._hits,
                cache_misses=self._misses,
                current_bytes=current,
                unshared_bytes=unshared,
                saved_bytes=unshared - current,
                memory=pool.ledger.snapshot(),
            )

    def memory_stats(self, device: str | None = None) -> dict[str, int]:
        """Counters under PyTorch's ``torch.cuda.memory_stats`` names, for one device or all.

        >>> import accelerate_lab as al
        >>> mgr = al.TensorSharingManager()
        >>> _ = mgr.register_shared_tensor("x", [4])
        >>> mgr.memory_stats("cpu")["allocated_bytes.all.current"]
        16
        """
        with self._pool.lock:
            ledger = self._pool.ledger
            counters = ledger.total() if device is None else ledger.snapshot().get(device, MemoryCounters())
            return counters.as_memory_stats()

    # ---- events -------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on every event from now on; returns a function that unsubscribes.

        Listeners run on the thread that caused the event, under the manager's lock: keep them short.
        """
        with self._pool.lock:
            return self._pool.log.subscribe(listener)

    def events(self, kind: EventKind | None = None) -> list[SharingEvent]:
        """The recorded events (the latest ``max_events``), oldest first, optionally of one kind."""
        with self._pool.lock:
            return self._pool.log.events(kind)

    # ---- helpers ------------------------------------------------------------------------------
    def _get(self, name: str) -> SharedTensor:
        tensor = self._pool.tensors.get(name)
        if tensor is None:
            raise KeyError(self._missing(name))
        return tensor

    def _missing(self, name: str) -> str:
        known = sorted(self._pool.tensors)
        listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        return f"no shared tensor named {name!r}; registered: {listed or 'none'}"

    def __repr__(self) -> str:
        with self._pool.lock:
            parts = []
            for device, counters in self._pool.ledger.snapshot().items():
                budget = "unlimited" if counters.budget_bytes is None else format_bytes(counters.budget_bytes)
                parts.append(f"{device}: {format_bytes(counters.current_bytes)} of {budget}")
            return f"TensorSharingManager({len(self)} tensors; {'; '.join(parts) or 'empty'})"
