"""Losses against float64 references (PyTorch's definitions, mean reduction)."""

from __future__ import annotations

import numpy as np
import pytest

import accelerate_lab as al


def test_mse_loss() -> None:
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert al.mse_loss(al.tensor(p), al.tensor(t)).item() == pytest.approx(((p - t) ** 2).mean())


def test_cross_entropy_is_mean_negative_log_likelihood() -> None:
    rng = np.random.default_rng(1)
    logits, ids = rng.standard_normal((5, 7)) * 50, rng.integers(0, 7, 5)
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = -log_p[np.arange(5), ids].mean()
    assert al.cross_entropy(al.tensor(logits), al.tensor(ids)).item() == pytest.approx(expected, rel=1e-12)


def test_binary_cross_entropy_clamps_logs_like_pytorch() -> None:
    p, t = np.array([0.2, 0.9, 0.0, 1.0]), np.array([0.0, 1.0, 1.0, 1.0])
    with np.errstate(divide="ignore"):
        expected = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100)).mean()
        got = al.binary_cross_entropy(al.tensor(p), al.tensor(t)).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_loss_errors() -> None:
    with pytest.raises(al.ShapeError, match="same shape"):
        al.mse_loss(al.zeros([2]), al.zeros([3]))
    with pytest.raises(TypeError, match="integer class ids"):
        al.cross_entropy(al.zeros([2, 3]), al.zeros([2]))
    with pytest.raises(al.ShapeError, match=r"targets of shape \(2,\)"):
        al.cross_entropy(al.zeros([2, 3]), al.tensor([0, 1, 2]))
