"""conv1d/conv2d against a direct float64 loop (the definition), over stride/padding/dilation/groups."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelerate_lab as al

Sizes = tuple[int, ...]
# x's shape, w's shape, stride, padding, dilation, groups
ConvCase = tuple[Sizes, Sizes, Sizes, Sizes, Sizes, int]


def reference_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    groups: int,
) -> np.ndarray:
    nd = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0), *((p, p) for p in padding)])
    n, c = x.shape[:2]
    o = w.shape[0]
    out_sizes = [
        (x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1) // stride[i] + 1
        for i in range(nd)
    ]
    out = np.zeros((n, o, *out_sizes))
    cg, og = c // groups, o // groups
    for oc in range(o):
        g = oc // og
        for pos in itertools.product(*(range(s) for s in out_sizes)):
            for k in itertools.product(*(range(s) for s in w.shape[2:])):
                src = tuple(pos[i] * stride[i] + k[i] * dilation[i] for i in range(nd))
                at: tuple[int | slice, ...] = (slice(None), oc, *pos)
                window: tuple[int | slice, ...] = (slice(None), slice(g * cg, (g + 1) * cg), *src)
                kernel: tuple[int | slice, ...] = (oc, slice(None), *k)
                out[at] += (xp[window] * w[kernel]).sum(axis=1)
        if b is not None:
            out[:, oc] += b[oc]
    return out


@st.composite
def conv_case(draw: st.DrawFn, nd: int) -> ConvCase:
    groups = draw(st.sampled_from([1, 2]))
    c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(d * (kk - 1) + 1, 7)) for kk, d in zip(k, dilation, strict=True))
    return (draw(st.integers(1, 2)), c, *size), (o, c // groups, *k), stride, padding, dilation, groups


@pytest.mark.parametrize("nd", [1, 2])
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_conv_matches_the_definition(nd: int, data: st.DataObject) -> None:
    xs, ws, stride, padding, dilation, groups = data.draw(conv_case(nd))
    rng = np.random.default_rng()
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    conv = al.conv1d if nd == 1 else al.conv2d
    out = conv(al.tensor(x), al.tensor(w), al.tensor(b), stride, padding, dilation, groups)
    np.testing.assert_allclose(
        out.numpy(), reference_conv(x, w, b, stride, padding, dilation, groups), rtol=1e-10, atol=1e-10
    )


def test_conv_errors_name_the_shapes() -> None:
    with pytest.raises(al.ShapeError, match="expects 3 input channels"):
        al.conv2d(al.zeros([1, 2, 5, 5]), al.zeros([4, 3, 3, 3]))
    with pytest.raises(al.ShapeError, match="gives no output"):
        al.conv1d(al.zeros([1, 1, 2]), al.zeros([1, 1, 5]))
    with pytest.raises(al.ShapeError, match="groups=2"):
        al.conv1d(al.zeros([1, 3, 5]), al.zeros([2, 1, 1]), groups=2)
    with pytest.raises(ValueError, match="stride must be an int or 2 ints"):
        al.conv2d(al.zeros([1, 1, 5, 5]), al.zeros([1, 1, 3, 3]), stride=(1, 1, 1))
