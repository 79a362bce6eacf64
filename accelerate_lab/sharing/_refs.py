"""Reference counts per model: the one bookkeeping shared by tensors and views.

A model may hold several references (nested use: each ``acquire`` needs its own ``release``);
releasing a model that holds none changes nothing, so no count is ever negative.
"""

from __future__ import annotations

__all__ = ["RefCounts"]


class RefCounts:
    """How many references each model holds, and their total."""

    __slots__ = ("_by_model", "total")

    def __init__(self) -> None:
        self._by_model: dict[str, int] = {}
        self.total = 0

    def add(self, model: str) -> None:
        by_model = self._by_model
        by_model[model] = by_model.get(model, 0) + 1
        self.total += 1

    def remove(self, model: str) -> bool:
        """One reference fewer for ``model``; False (and no change) when it holds none."""
        held = self._by_model.get(model, 0)
        if held == 0:
            return False
        if held == 1:
            del self._by_model[model]
        else:
            self._by_model[model] = held - 1
        self.total -= 1
        return True

    def drop(self, model: str) -> int:
        """Remove every reference ``model`` holds; how many there were."""
        held = self._by_model.pop(model, 0)
        self.total -= held
        return held

    def count(self, model: str) -> int:
        return self._by_model.get(model, 0)

    def as_dict(self) -> dict[str, int]:
        return dict(self._by_model)

    def models(self) -> tuple[str, ...]:
        return tuple(self._by_model)

    def clear(self) -> None:
        self._by_model.clear()
        self.total = 0
