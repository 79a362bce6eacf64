"""Reverse-mode gradients of every differentiable op against central finite differences (float64)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import accelerate_lab as al

Fn = Callable[..., al.Tensor]


def gradcheck(fn: Fn, *arrays: np.ndarray, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Compare d(sum(fn(x) * w))/dx with central differences, for random weights ``w``."""
    inputs = [al.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    weights = np.random.default_rng(0).standard_normal(out.shape)
    (out * al.tensor(weights)).sum().backward()
    for index, array in enumerate(arrays):
        numeric = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            values = []
            for step in (eps, -eps):
                shifted = [a.copy() for a in arrays]
                shifted[index][position] += step
                with al.no_grad():
                    values.append(float((fn(*(al.tensor(s) for s in shifted)).numpy() * weights).sum()))
            numeric[position] = (values[0] - values[1]) / (2 * eps)
        grad = inputs[index].grad
        assert grad is not None, f"input {index} got no gradient"
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=rtol, atol=atol, err_msg=f"input {index}")


rng = np.random.default_rng(42)


def r(*shape: int, low: float = -2, high: float = 2) -> np.ndarray:
    return rng.uniform(low, high, shape)


CASES: dict[str, tuple[Fn, tuple[np.ndarray, ...]]] = {
    "add_broadcast": (lambda a, b: a + b, (r(2, 3), r(3))),
    "sub_broadcast": (lambda a, b: a - b, (r(2, 1), r(1, 3))),
    "mul_scalar": (lambda a: a * 3.0 - 1.0, (r(4),)),
    "mul": (lambda a, b: a * b, (r(2, 3), r(2, 1))),
    "div": (lambda a, b: a / b, (r(3), r(3, low=0.5, high=2))),
    "rdiv": (lambda a: 2.0 / a, (r(3, low=0.5, high=2),)),
    "pow": (lambda a, b: a**b, (r(3, low=0.5, high=2), r(3))),
    "pow_scalar": (lambda a: a**3, (r(3),)),
    "neg_exp_log": (lambda a: al.log(al.exp(-a) + 1), (r(5),)),
    "sqrt_abs": (lambda a: al.sqrt(al.abs(a) + 0.1), (r(5),)),
    "maximum_minimum": (lambda a, b: al.maximum(a, b) * 2 + al.minimum(a, b), (r(6), r(6))),
    "where": (lambda a, b: al.where(a > 0, a, b * 2), (r(2, 3), r(3))),
    "matmul_batched": (lambda a, b: a @ b, (r(2, 1, 3, 4), r(3, 4, 2))),
    "matmul_vec_mat": (lambda a, b: a @ b, (r(4), r(2, 4, 3))),
    "matmul_mat_vec": (lambda a, b: a @ b, (r(2, 3, 4), r(4))),
    "matmul_vec_vec": (lambda a, b: al.matmul(a, b), (r(4), r(4))),
    "linear": (lambda x, w, b: al.linear(x, w, b), (r(3, 4), r(2, 4), r(2))),
    "reshape_transpose": (lambda a: a.reshape(3, 2).T * al.tensor(np.arange(6.0).reshape(2, 3)), (r(2, 3),)),
    "flatten_squeeze": (lambda a: al.unsqueeze(al.squeeze(al.flatten(a, 1)), 0), (r(1, 2, 3),)),
    "getitem": (lambda a: a[1:, ::2, None] * 3, (r(3, 4),)),
    "slice": (lambda a: al.slice(a, 1, 3, axis=1), (r(2, 4),)),
    "concat_stack": (
        lambda a, b: al.stack([al.concat([a, b], 0), al.concat([b, a], 0)], 1),
        (r(2, 3), r(1, 3)),
    ),
    "broadcast_to": (lambda a: al.broadcast_to(a, (4, 2, 3)), (r(2, 1),)),
    "clone": (lambda a: a.clone() * a, (r(3),)),
    "sum_mean": (lambda a: al.sum(a, 1, keepdims=True) + al.mean(a, (0, 2)).reshape(1, 3, 1), (r(2, 3, 4),)),
    "max_min": (lambda a: al.max(a, 0) + al.min(a, -1).sum(), (r(3, 4),)),
    "var": (lambda a: al.var(a, 1, correction=1), (r(3, 5),)),
    "relu": (lambda a: al.relu(a), (np.array([-1.5, -0.2, 0.3, 2.0]),)),
    "sigmoid_tanh_silu": (lambda a: al.sigmoid(a) + al.tanh(a) + al.silu(a), (r(5),)),
    "gelu": (lambda a: al.gelu(a), (r(6, low=-4, high=4),)),
    "gelu_tanh": (lambda a: al.gelu(a, approximate="tanh"), (r(6, low=-4, high=4),)),
    "softmax": (lambda a: al.softmax(a, 0), (r(3, 4),)),
    "log_softmax": (lambda a: al.log_softmax(a, -1), (r(3, 4),)),
    "layer_norm": (lambda x, w, b: al.layer_norm(x, w, b), (r(2, 5), r(5), r(5))),
    "embedding": (lambda t: al.embedding(al.tensor([[0, 2], [2, 2]]), t), (r(3, 4),)),
    "conv1d": (
        lambda x, w, b: al.conv1d(x, w, b, stride=2, padding=1, dilation=1),
        (r(2, 2, 7), r(3, 2, 3), r(3)),
    ),
    "conv2d_groups": (
        lambda x, w: al.conv2d(x, w, stride=(1, 2), padding=1, dilation=(2, 1), groups=2),
        (r(1, 4, 5, 5), r(2, 2, 2, 3)),
    ),
    "attention": (
        lambda q, k, v: al.scaled_dot_product_attention(q, k, v),
        (r(2, 3, 4), r(2, 5, 4), r(2, 5, 2)),
    ),
    "attention_causal": (
        lambda q, k, v: al.scaled_dot_product_attention(q, k, v, is_causal=True),
        (r(4, 3), r(4, 3), r(4, 2)),
    ),
    "attention_mask": (
        lambda q, k, v: al.scaled_dot_product_attention(
            q, k, v, mask=al.tensor(np.array([[True, False, True]] * 2))
        ),
        (r(2, 3), r(3, 3), r(3, 2)),
    ),
    "mse": (lambda p, t: al.mse_loss(p, t), (r(3, 2), r(3, 2))),
    "cross_entropy": (lambda x: al.cross_entropy(x, al.tensor([0, 2, 1])), (r(3, 4),)),
    "bce": (lambda p, t: al.binary_cross_entropy(p, t), (r(4, low=0.1, high=0.9), r(4, low=0, high=1))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name: str) -> None:
    fn, arrays = CASES[name]
    gradcheck(fn, *arrays)


def test_cast_passes_gradients_between_float_dtypes() -> None:
    # finite differences cannot see through float32 rounding, so check the rule exactly
    x = al.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    (al.cast(x, "float32") * al.tensor([3.0, 4.0])).sum().backward()
    assert x.grad is not None and x.grad.dtype == "float64" and x.grad.tolist() == [3.0, 4.0]


def test_gradients_accumulate_across_backward_calls_and_uses() -> None:
    x = al.tensor([1.0, 2.0], requires_grad=True)
    (x * x + x).sum().backward()
    (x * 2).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [5.0, 7.0]


def test_no_grad_records_nothing() -> None:
    x = al.tensor([1.0], requires_grad=True)
    with al.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    assert al.is_grad_enabled()


def test_backward_errors_are_clear() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        al.ones([1]).backward()
    x = al.ones([2], requires_grad=True)
    with pytest.raises(ValueError, match="non-scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="in-place"):
        x[0] = 3.0


def test_detach_cuts_the_graph() -> None:
    x = al.tensor([3.0], requires_grad=True)
    (x.detach() * x).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [3.0]


def test_fit_a_tiny_classifier() -> None:
    rng = np.random.default_rng(0)
    points = rng.standard_normal((64, 2))
    labels = al.tensor((points[:, 0] + points[:, 1] > 0).astype(np.int64))
    x = al.tensor(points, dtype="float32")
    w = al.tensor(rng.standard_normal((2, 2)) * 0.1, dtype="float32", requires_grad=True)
    b = al.zeros([2], requires_grad=True)
    first = None
    for _ in range(60):
        loss = al.cross_entropy(al.linear(x, w, b), labels)
        first = first or loss.item()
        w.grad = b.grad = None
        loss.backward()
        with al.no_grad():
            w = (w - w.grad * 0.5).detach()  # type: ignore[operator]
            b = (b - b.grad * 0.5).detach()  # type: ignore[operator]
        w.requires_grad = b.requires_grad = True
    accuracy = (al.argmax(al.linear(x, w, b), axis=1) == labels).numpy().mean()
    assert first is not None and loss.item() < first / 3 and accuracy > 0.95
