"""Choosing the next token: greedy, or sampled with temperature, top-k and top-p, from a seed.

>>> import numpy as np
>>> logits = np.array([1.0, 3.0, 2.0], np.float32)
>>> Sampler(SamplingParams())(logits)                       # temperature 0: greedy
1
>>> draws = [Sampler(SamplingParams(temperature=1.0, top_k=2, seed=s))(logits) for s in range(20)]
>>> sorted(set(draws))                                        # top-k 2 never picks token 0
[1, 2]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelerate_lab.models.llm.errors import SamplingError
from accelerate_lab.tensor import Tensor, ops

__all__ = ["Sampler", "SamplingParams"]


@dataclass(frozen=True)
class SamplingParams:
    """How a reply is generated.

    ``temperature`` 0 picks the most likely token (greedy, reproducible); above 0, tokens are drawn
    from the softmax of ``logits / temperature``, restricted to the ``top_k`` most likely (0: all)
    and to the smallest set whose probability reaches ``top_p``; ``seed`` makes draws repeatable.
    Generation ends after ``max_new_tokens``, at a ``stop`` string (not included in the text), or at
    one of ``stop_token_ids`` (None: the model's end-of-turn tokens; ``()``: never).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        problems = [
            f"max_new_tokens={self.max_new_tokens} must be >= 1" if self.max_new_tokens < 1 else "",
            f"temperature={self.temperature} must be >= 0" if not self.temperature >= 0 else "",
            f"top_k={self.top_k} must be >= 0 (0 turns it off)" if self.top_k < 0 else "",
            f"top_p={self.top_p} must be in (0, 1]" if not 0 < self.top_p <= 1 else "",
            "stop strings must be non-empty" if any(not s for s in self.stop) else "",
        ]
        found = [p for p in problems if p]
        if found:
            raise SamplingError("; ".join(found))

    def updated(self, **options: object) -> SamplingParams:
        """A copy with some fields changed; ``stop`` may be one string; unknown names raise `SamplingError`.

        >>> SamplingParams().updated(temperature=0.7, stop="User:").stop
        ('User:',)
        """
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SamplingError(f"unknown sampling option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        changes: dict[str, Any] = dict(options)
        if isinstance(changes.get("stop"), str):
            changes["stop"] = (changes["stop"],)
        for name in ("stop", "stop_token_ids"):
            if isinstance(changes.get(name), list):
                changes[name] = tuple(changes[name])
        return dataclasses.replace(self, **changes)


class Sampler:
    """Picks token ids from logits according to `SamplingParams`, with its own random generator."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        self._rng = np.random.default_rng(params.seed)

    def wanted(self, logits: Tensor) -> Tensor:
        """What the host needs of a step's ``(vocab,)`` logits to pick from them: when greedy, the id
        chosen on their device (8 bytes to download, not the vocabulary's logits), else the logits."""
        return ops.argmax(logits, -1) if self.params.temperature == 0 else logits

    def pick(self, fetched: np.ndarray) -> int:
        """The next token id from the data of `wanted`'s tensor."""
        return int(fetched) if self.params.temperature == 0 else self(fetched)

    def __call__(self, logits: np.ndarray) -> int:
        """The next token id for one row of logits (``(vocab,)``)."""
        p = self.params
        if p.temperature == 0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / p.temperature
        if 0 < p.top_k < scaled.size:
            kth = np.partition(scaled, -p.top_k)[-p.top_k]
            scaled = np.where(scaled < kth, -np.inf, scaled)
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        if p.top_p < 1:
            order = np.argsort(-probs, kind="stable")
            before = np.cumsum(probs[order]) - probs[order]  # mass of the more likely tokens
            dropped = order[before >= p.top_p]
            probs[dropped] = 0.0
        cumulative = np.cumsum(probs)
        return int(
            min(
                np.searchsorted(cumulative, self._rng.random() * cumulative[-1], side="right"), probs.size - 1
            )
        )
