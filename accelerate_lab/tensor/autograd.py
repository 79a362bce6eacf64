"""Reverse-mode automatic differentiation: the graph nodes, grad mode, and ``backward``.

Every differentiable op records a :class:`Node` on its output when grad mode is on and an input
requires grad. ``backward`` walks the graph once in reverse topological order, calling each
node's rule with the output's gradient; rules are written with tensor ops, so gradients run on
whatever device the tensors live on.

>>> import accelerate_lab as al
>>> x = al.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad.tolist()
[2.0, 4.0, 6.0]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelerate_lab.tensor.tensor import Tensor

__all__ = ["Node", "backward", "enable_grad", "is_grad_enabled", "no_grad"]

BackwardRule = Callable[["Tensor"], Sequence["Tensor | None"]]


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether ops record the graph in this thread."""
    return _mode.enabled


@contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    previous = _mode.enabled
    _mode.enabled = enabled
    try:
        yield
    finally:
        _mode.enabled = previous


def no_grad() -> AbstractContextManager[None]:
    """Ops inside ``with al.no_grad():`` record nothing (inference, optimiser steps)."""
    return _grad_mode(False)


def enable_grad() -> AbstractContextManager[None]:
    """Turn recording back on inside a ``no_grad`` block."""
    return _grad_mode(True)


@dataclass(slots=True)
class Node:
    """How an op's output was made: its tensor inputs and the rule giving their gradients."""

    op: str
    inputs: tuple[Tensor | None, ...]
    rule: BackwardRule


def _topological(root: Tensor) -> list[Tensor]:
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._node
        if node is not None:
            stack.extend(
                (parent, False) for parent in node.inputs if parent is not None and parent.requires_grad
            )
    return order


def backward(root: Tensor, grad: Tensor) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    grads: dict[int, Tensor] = {id(root): grad}
    with no_grad():
        for tensor in reversed(_topological(root)):
            g = grads.pop(id(tensor), None)
            if g is None:
                continue
            node = tensor._node
            if node is None:
                tensor.grad = g if tensor.grad is None else tensor.grad + g
                continue
            for parent, parent_grad in zip(node.inputs, node.rule(g), strict=True):
                if parent is None or parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
