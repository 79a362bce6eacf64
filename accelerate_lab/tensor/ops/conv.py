"""1-D and 2-D convolution (cross-correlation, as PyTorch) with stride, padding, dilation, groups."""

from __future__ import annotations

from collections.abc import Sequence

from accelerate_lab.hal import shapes
from accelerate_lab.tensor.ops.dispatch import apply
from accelerate_lab.tensor.ops.reduce import sum as reduce_sum
from accelerate_lab.tensor.tensor import Tensor

__all__ = ["conv1d", "conv2d"]

IntOrTuple = int | Sequence[int]


def _tuple(value: IntOrTuple, n: int, name: str) -> tuple[int, ...]:
    out = (value,) * n if isinstance(value, int) else tuple(int(v) for v in value)
    if len(out) != n:
        raise ValueError(f"{name} must be an int or {n} ints, got {value!r}")
    return out


def _conv(
    nd: int,
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: IntOrTuple,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    groups: int,
) -> Tensor:
    params = {
        "stride": _tuple(stride, nd, "stride"),
        "padding": _tuple(padding, nd, "padding"),
        "dilation": _tuple(dilation, nd, "dilation"),
        "groups": groups,
    }
    shapes.conv_output_shape(x.shape, weight.shape, **params)  # type: ignore[arg-type]
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"conv{nd}d bias must have shape ({weight.shape[0]},), got {bias.shape}")

    def rule(g: Tensor) -> tuple[Tensor | None, ...]:
        gx = apply("conv_backward_input", (g, weight), {"input_shape": x.shape, **params})
        gw = apply("conv_backward_weight", (x, g), {"weight_shape": weight.shape, **params})
        gb = reduce_sum(g, (0, *range(2, g.rank))) if bias is not None else None
        return gx, gw, gb

    return apply("conv", (x, weight, bias), params, backward=rule)


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Tensor:
    """Input ``(N, C, L)``, weight ``(O, C/groups, K)`` -> ``(N, O, L_out)``."""
    return _conv(1, x, weight, bias, stride, padding, dilation, groups)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Tensor:
    """Input ``(N, C, H, W)``, weight ``(O, C/groups, KH, KW)`` -> ``(N, O, H_out, W_out)``."""
    return _conv(2, x, weight, bias, stride, padding, dilation, groups)
