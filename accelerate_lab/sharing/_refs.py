"""Reference counts per model: the one bookkeeping shared by tensors and views (their base class).

A model may hold several references (nested use: each ``acquire`` needs its own ``release``);
releasing a model that holds none changes nothing, so no count is ever negative.

The counts live in the tensor or view itself, and their dict only while some model holds a
reference: most of 100,000 tensors freed at once hold none, and each object they own costs time then.
"""

from __future__ import annotations

__all__ = ["RefCounted"]


class RefCounted:
    """How many references each model holds (``_by_model``, None when none does), and their total."""

    __slots__ = ("_by_model", "_ref_total")

    def __init__(self) -> None:
        self._by_model: dict[str, int] | None = None
        self._ref_total = 0

    def _add_ref(self, model: str) -> None:
        by_model = self._by_model
        if by_model is None:
            self._by_model = {model: 1}
        else:
            by_model[model] = by_model.get(model, 0) + 1
        self._ref_total += 1

    def _remove_ref(self, model: str) -> bool:
        """One reference fewer for ``model``; False (and no change) when it holds none."""
        by_model = self._by_model
        if by_model is None:
            return False
        held = by_model.get(model, 0)
        if held == 0:
            return False
        if held > 1:
            by_model[model] = held - 1
        elif len(by_model) > 1:
            del by_model[model]
        else:
            self._by_model = None
        self._ref_total -= 1
        return True

    def _drop_refs(self, model: str) -> int:
        """Remove every reference ``model`` holds; how many there were."""
        by_model = self._by_model
        held = 0 if by_model is None else by_model.pop(model, 0)
        if held:
            self._ref_total -= held
            if not by_model:
                self._by_model = None
        return held

    def _refs_of(self, model: str) -> int:
        by_model = self._by_model
        return 0 if by_model is None else by_model.get(model, 0)

    def _ref_dict(self) -> dict[str, int]:
        return {} if self._by_model is None else dict(self._by_model)

    def _ref_models(self) -> tuple[str, ...]:
        return () if self._by_model is None else tuple(self._by_model)

    def _clear_refs(self) -> None:
        self._by_model = None
        self._ref_total = 0
