"""What the memory dashboard shows, as JSON-ready dicts read from sharing managers and devices.

Pure reading: no widget, no comm. Each function takes the managers (and devices) and returns the
plain data one part of the view draws, so the widget only decides *when* to send it.

>>> import accelerate_lab as al
>>> mgr = al.TensorSharingManager(max_memory_mb=1)
>>> _ = mgr.register_shared_tensor("emb", [64, 64], producer_model="bert", consumer_models=["clip"])
>>> [(row["name"], row["consumers"], row["bytes"]) for row in tensor_rows([mgr])]
[('emb', ['clip'], 16384)]
>>> budget_rows([mgr])[0]["budget"]
1048576
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.registry import get_device
from accelerate_lab.sharing import SharingEvent, TensorSharingManager

__all__ = [
    "DEVICE_LABELS",
    "Json",
    "budget_rows",
    "device_rows",
    "event_summary",
    "history_points",
    "model_rows",
    "recommendation_rows",
    "tensor_rows",
]

Json: TypeAlias = dict[str, object]

DEVICE_LABELS = {
    "cpu": "kernel CPU",
    "wgpu": "native GPU (wgpu)",
    "browser:webgpu": "browser GPU (WebGPU)",
    "browser:webnn": "browser WebNN",
}
_NAMES_SHOWN = 12  # tensor names listed per recommendation; the rest are counted
# how each kind of event changes the bytes a manager holds
_DELTA_SIGN = {"register": 1, "copy": 1, "evict": -1, "free": -1, "dedupe": -1}


def _label(managers: Sequence[TensorSharingManager], index: int) -> str:
    return "" if len(managers) == 1 else f"#{index}"


def budget_rows(managers: Sequence[TensorSharingManager]) -> list[Json]:
    """One row per manager and storage device: bytes held now, the peak, and the budget (None: unlimited)."""
    rows: list[Json] = []
    for index, manager in enumerate(managers):
        stats = manager.get_stats()
        for device, counters in stats.memory.items():
            rows.append(
                {
                    "manager": index,
                    "label": _label(managers, index),
                    "device": device,
                    "current": counters.current_bytes,
                    "peak": counters.peak_bytes,
                    "budget": counters.budget_bytes,
                    "evictions": counters.evictions,
                    "refusals": counters.budget_refusals,
                    "saved": stats.saved_bytes,
                }
            )
    return rows


def model_rows(managers: Sequence[TensorSharingManager]) -> list[Json]:
    """The memory each model holds (exclusive and shared), largest first."""
    rows: list[Json] = []
    for index, manager in enumerate(managers):
        for name, usage in manager.get_model_memory_usage().items():
            rows.append(
                {
                    "manager": index,
                    "model": name,
                    "bytes": usage.bytes,
                    "exclusive": usage.exclusive_bytes,
                    "shared": usage.shared_bytes,
                    "tensors": len(usage.tensors),
                }
            )
    return sorted(rows, key=lambda row: (-int(str(row["bytes"])), str(row["model"])))


def tensor_rows(managers: Sequence[TensorSharingManager], limit: int = 500) -> list[Json]:
    """The table's rows (the ``limit`` largest tensors): name, shape, dtype, device, references,
    consumers (holders other than the producer), pinned."""
    rows: list[Json] = []
    for index, manager in enumerate(managers):
        for name, usage in manager.get_tensor_memory_usage().items():
            rows.append(
                {
                    "manager": index,
                    "name": name,
                    "shape": list(usage.shape),
                    "dtype": usage.dtype,
                    "device": usage.storage_type,
                    "bytes": usage.bytes,
                    "references": usage.reference_count,
                    "producer": usage.producer,
                    "consumers": sorted(m for m in usage.references if m != usage.producer),
                    "pinned": usage.pinned,
                    "views": len(usage.views),
                }
            )
    rows.sort(key=lambda row: (-int(str(row["bytes"])), str(row["name"])))
    return rows[:limit]


def recommendation_rows(managers: Sequence[TensorSharingManager]) -> list[Json]:
    """Each manager's recommended actions with the bytes they would save, largest first."""
    rows: list[Json] = []
    for index, manager in enumerate(managers):
        for rec in manager.get_optimization_recommendations():
            rows.append(
                {
                    "manager": index,
                    "action": rec.action,
                    "tensors": list(rec.tensors[:_NAMES_SHOWN]),
                    "more": max(0, len(rec.tensors) - _NAMES_SHOWN),
                    "models": list(rec.models),
                    "bytes_saved": rec.bytes_saved,
                    "how": rec.how,
                }
            )
    return sorted(rows, key=lambda row: -int(str(row["bytes_saved"])))


def history_points(managers: Sequence[TensorSharingManager], max_points: int = 240) -> list[Json]:
    """Bytes held per device over time, from the event history: ``{"t", "device", "bytes"}`` points.

    Walks back from the bytes held now, so a history that lost its oldest events (it is bounded)
    still ends at the true value. At most ``max_points`` per device (the latest ones).
    """
    points: list[Json] = []
    for manager in managers:
        current = {device: c.current_bytes for device, c in manager.get_stats().memory.items()}
        per_device: dict[str, list[tuple[float, int]]] = {}
        for event in reversed(manager.events()):
            sign = _DELTA_SIGN.get(event.kind)
            if sign is None:
                continue
            held = current.setdefault(event.device, 0)
            per_device.setdefault(event.device, []).append((event.time, held))
            current[event.device] = held - sign * event.bytes
        for device, series in per_device.items():
            for t, held in reversed(series[:max_points]):
                points.append({"t": t, "device": device, "bytes": held})
    return sorted(points, key=lambda p: float(str(p["t"])))


def _device_names(managers: Iterable[TensorSharingManager], extra: Iterable[str]) -> list[str]:
    names = ["cpu"]
    # wgpu is shown once something started it: creating an adapter just to report zero bytes would
    # cost a second of start-up in every notebook that shows a dashboard
    if "wgpu" in sys.modules:
        names.append("wgpu")
    names += ["browser:webgpu", "browser:webnn", *extra]
    for manager in managers:
        names += list(manager.get_stats().memory)
    return list(dict.fromkeys(names))


def device_rows(managers: Sequence[TensorSharingManager], extra: Iterable[str] = ()) -> list[Json]:
    """Each available device: what it reports (allocated, peak, limit) and what the managers store there.

    Devices that are not registered (no browser connected) or fail to start are left out.
    """
    stored: dict[str, int] = {}
    for manager in managers:
        for device, counters in manager.get_stats().memory.items():
            stored[device] = stored.get(device, 0) + counters.current_bytes
    rows: list[Json] = []
    for name in _device_names(managers, extra):
        try:
            found = get_device(name)
            memory, info = found.memory(), found.info()
        except DeviceError:
            continue
        rows.append(
            {
                "name": name,
                "label": DEVICE_LABELS.get(name, name),
                "description": info.description,
                "allocated": memory.allocated_bytes,
                "peak": memory.peak_bytes,
                "limit": memory.limit_bytes,
                "shared": stored.get(name, 0),
            }
        )
    return rows


def event_summary(event: SharingEvent) -> str:
    """One line for the dashboard's status bar: ``register bert.emb (cpu)``."""
    who = f" by {event.model}" if event.model else ""
    return f"{event.kind} {event.tensor}{who} ({event.device})"
