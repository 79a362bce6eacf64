"""Choosing a device from what is available: adapter type, features and limits, not browser sniffing.

Ranking by default: a native hardware GPU (discrete before integrated), then a hardware GPU in a
connected browser, then the ``cpu`` device; software adapters (Mesa's lavapipe, SwiftShader;
``DeviceInfo.is_fallback``) come last, since numpy beats them. ``prefer`` narrows the choice to
a kind or names a device; ``features`` and ``limits`` are requirements.

>>> import accelerate_lab as al
>>> al.select_device(prefer="cpu").name
'cpu'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal.device import Device, DeviceInfo
from accelerate_lab.hal.registry import get_device, probe_devices

__all__ = ["rank_device", "select_device"]

_KINDS = frozenset({"gpu", "browser", "cpu"})


def rank_device(info: DeviceInfo) -> int:
    """Higher is better: native discrete GPU 5, native GPU 4, browser GPU 3, cpu 2, software adapters 1."""
    if info.is_fallback:
        return 1
    if info.kind == "gpu":
        return 5 if "discrete" in info.description.lower() else 4
    if info.kind == "browser":
        return 3
    return 2


def _rejection(info: DeviceInfo, features: Iterable[str], limits: Mapping[str, int]) -> str | None:
    missing = [f for f in features if f not in info.features]
    if missing:
        return f"lacks features {', '.join(missing)}"
    short = [f"{k}={info.limits.get(k, 0)} < {v}" for k, v in limits.items() if info.limits.get(k, 0) < v]
    if short:
        return f"limits too small ({', '.join(short)})"
    return None


def select_device(
    prefer: str | None = None,
    *,
    features: Iterable[str] = (),
    limits: Mapping[str, int] | None = None,
    allow_software: bool = False,
) -> Device:
    """The best available device meeting the requirements.

    ``prefer``: ``"gpu"`` (native), ``"browser"``, ``"cpu"`` or a device name. Software adapters
    are considered only when ``allow_software`` is true, when ``prefer`` is a kind and nothing
    else of that kind is available, or when ``prefer`` names them. ``DeviceError`` lists why each
    device was rejected when none qualifies.
    """
    needed = tuple(features)
    minimum = dict(limits or {})
    reasons: dict[str, str] = {}
    candidates: list[DeviceInfo] = []
    for name, found in probe_devices().items():
        if isinstance(found, str):
            reasons[name] = found
            continue
        if prefer is not None and prefer not in _KINDS and name != prefer:
            continue
        if prefer in _KINDS and found.kind != prefer:
            reasons[name] = f"is a {found.kind} device, not {prefer}"
            continue
        why = _rejection(found, needed, minimum)
        if why is not None:
            reasons[name] = why
            continue
        candidates.append(found)
    hardware = [c for c in candidates if not c.is_fallback]
    if not (allow_software or prefer is not None):
        for c in candidates:
            if c.is_fallback:
                reasons[c.name] = "is a software adapter (pass allow_software=True to use it)"
        candidates = hardware
    elif hardware and not allow_software:
        candidates = hardware
    if not candidates:
        detail = "; ".join(f"{name} {why}" for name, why in sorted(reasons.items())) or "none registered"
        raise DeviceError(
            f"no device matches prefer={prefer!r}, features={needed}, limits={minimum}: {detail}"
        )
    best = max(candidates, key=rank_device)
    return get_device(best.name)
