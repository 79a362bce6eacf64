"""The public namespace: complete, sorted, and every name importable."""

from __future__ import annotations

import accelerate_lab as al
from accelerate_lab import hal


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff (RUF022) keeps: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    for module in (al, hal):
        assert list(module.__all__) == sorted(module.__all__, key=_isort_key)
        assert all(hasattr(module, name) for name in module.__all__)


def test_design_names_are_exported() -> None:
    design = [
        "Tensor",
        "tensor",
        "zeros",
        "ones",
        "arange",
        "random",
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "neg",
        "exp",
        "log",
        "sqrt",
        "abs",
        "maximum",
        "minimum",
        "where",
        "matmul",
        "transpose",
        "reshape",
        "flatten",
        "concat",
        "stack",
        "squeeze",
        "unsqueeze",
        "slice",
        "sum",
        "mean",
        "max",
        "min",
        "argmax",
        "var",
        "relu",
        "gelu",
        "sigmoid",
        "tanh",
        "softmax",
        "log_softmax",
        "layer_norm",
        "linear",
        "embedding",
        "conv1d",
        "conv2d",
        "scaled_dot_product_attention",
        "mse_loss",
        "cross_entropy",
        "binary_cross_entropy",
        "no_grad",
        "broadcast_shapes",
        "broadcast_to",
        "devices",
    ]
    assert [name for name in design if name not in al.__all__] == []


def test_errors_share_one_base() -> None:
    for error in (al.ShapeError, al.DeviceError, al.MemoryBudgetExceeded, al.UnsupportedKernelError):
        assert issubclass(error, al.AccelerateLabError)
    assert issubclass(al.ShapeError, ValueError)
