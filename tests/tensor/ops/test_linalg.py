"""matmul, linear and fused_linear against numpy: batches, broadcast batch dims, 1-D rules, errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelerate_lab as al
from accelerate_lab.hal import Buffer, CpuDevice, register_device, unregister_device
from accelerate_lab.hal.device import KernelInput
from tests.tensor.strategies import non_contiguous


@st.composite
def matmul_operands(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = (draw(st.integers(1, 6)) for _ in range(3))
    batch_a = draw(st.lists(st.integers(1, 3), max_size=2))
    batch_b = [1 if draw(st.booleans()) else d for d in batch_a]
    batch_b = batch_b[len(batch_b) - draw(st.integers(0, len(batch_b))) :]  # broadcasting aligns on the right
    a = (k,) if draw(st.booleans()) and not batch_a else (*batch_a, m, k)
    b = (k,) if draw(st.booleans()) and not batch_b else (*batch_b, k, n)
    return a, b


@given(shapes=matmul_operands(), dtype=st.sampled_from(["float32", "float64"]))
@settings(max_examples=60, deadline=None)
def test_matmul_matches_numpy_including_1d_and_batch_broadcast(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], dtype: str
) -> None:
    rng = np.random.default_rng()
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    out = al.tensor(a) @ al.tensor(b)
    expected = a @ b
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_matmul_broadcasts_batch_dims() -> None:
    a = np.random.default_rng(1).standard_normal((2, 1, 3, 4))
    b = np.random.default_rng(2).standard_normal((5, 4, 2))
    np.testing.assert_allclose(al.matmul(al.tensor(a), al.tensor(b)).numpy(), a @ b, rtol=1e-12)


def test_matmul_shape_errors_name_the_shapes() -> None:
    with pytest.raises(al.ShapeError, match=r"\(2, 3\) by \(4, 5\): inner dimensions 3 and 4"):
        al.matmul(al.zeros([2, 3]), al.zeros([4, 5]))
    with pytest.raises(al.ShapeError, match="batch dimensions"):
        al.matmul(al.zeros([2, 2, 3]), al.zeros([4, 3, 1]))
    with pytest.raises(al.ShapeError, match="rank >= 1"):
        al.matmul(al.tensor(1.0), al.zeros([1]))


def test_linear_uses_pytorch_weight_layout() -> None:
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    np.testing.assert_allclose(al.linear(al.tensor(x), al.tensor(w), al.tensor(b)).numpy(), x @ w.T + b)
    np.testing.assert_allclose(al.linear(al.tensor(x), al.tensor(w)).numpy(), x @ w.T)


@given(x=non_contiguous("float64"))
@settings(max_examples=25, deadline=None)
def test_matmul_reads_non_contiguous_views(x: np.ndarray) -> None:
    t = al.tensor(np.ascontiguousarray(x.T)).T
    product = t @ al.matrix_transpose(t)
    np.testing.assert_allclose(product.numpy(), x @ np.swapaxes(x, -1, -2), rtol=1e-10, atol=1e-10)


class UnfusedCpu(CpuDevice):
    """The cpu without fused kernels, recording the kernels it runs."""

    name = "unfused"

    def __init__(self) -> None:
        super().__init__()
        self.kernels: list[str] = []

    def supports(self, kernel: str) -> bool:
        return kernel != "fused_linear" and super().supports(kernel)

    def run(self, kernel: str, inputs: Sequence[KernelInput], params: Mapping[str, object]) -> Buffer:
        self.kernels.append(kernel)
        return super().run(kernel, inputs, params)


@pytest.fixture
def unfused() -> Iterator[UnfusedCpu]:
    register_device("unfused", UnfusedCpu)
    device = al.get_device("unfused")
    assert isinstance(device, UnfusedCpu)
    yield device
    unregister_device("unfused")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["none", "gelu"])
def test_fused_linear_is_the_composition_on_devices_with_and_without_the_kernel(
    unfused: UnfusedCpu, dtype: str, activation: Literal["none", "gelu"]
) -> None:
    rng = np.random.default_rng()
    x, w, b, r = (rng.standard_normal(s).astype(dtype) for s in ((600, 40), (40, 70), (70,), (600, 70)))
    tensors = [al.tensor(a) for a in (x, w, b, r)]
    fused = al.fused_linear(*tensors[:3], activation=activation, residual=tensors[3])
    composed = al.fused_linear(
        *(t.to("unfused") for t in tensors[:3]), activation=activation, residual=tensors[3].to("unfused")
    )
    expected = {"none": ["matmul", "add", "add"], "gelu": ["matmul", "add", "gelu", "add"]}[activation]
    assert unfused.kernels[-len(expected) :] == expected
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(fused.numpy(), composed.to("cpu").numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(al.fused_linear(tensors[0], tensors[1]).numpy(), x @ w, rtol=tolerance)


def test_fused_linear_composes_where_gradients_are_wanted() -> None:
    rng = np.random.default_rng()
    x, w, b, r = (
        al.tensor(rng.standard_normal(s), requires_grad=True) for s in ((5, 4), (4, 3), (3,), (5, 3))
    )
    al.fused_linear(x, w, b, activation="gelu", residual=r).sum().backward()
    reference = [al.tensor(t.numpy(), requires_grad=True) for t in (x, w, b, r)]
    al.add(
        al.gelu(al.add(al.matmul(reference[0], reference[1]), reference[2])), reference[3]
    ).sum().backward()
    for got, want in zip((x, w, b, r), reference, strict=True):
        assert got.grad is not None and want.grad is not None
        np.testing.assert_allclose(got.grad.numpy(), want.grad.numpy(), rtol=1e-12)


def test_fused_linear_rejects_an_unknown_activation() -> None:
    with pytest.raises(ValueError, match="activation must be 'none' or 'gelu'"):
        al.fused_linear(al.ones([2, 2]), al.ones([2, 2]), activation="relu")  # type: ignore[arg-type]
