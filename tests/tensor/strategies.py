"""Hypothesis strategies for tensors: shapes, broadcastable pairs, and arrays of every dtype."""

from __future__ import annotations

from typing import Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = ("float32", "float64")
ALL_DTYPES = ("float32", "float64", "float16", "int32", "int64", "uint8", "bool")


def arrays(
    dtype: str, shape: tuple[int, ...], low: float = -10, high: float = 10
) -> st.SearchStrategy[np.ndarray]:
    """Finite values in [low, high] (integers and bools where the dtype asks)."""
    kind = np.dtype(dtype).kind
    if kind == "b":
        elements: st.SearchStrategy[object] = st.booleans()
    elif kind in "iu":
        elements = st.integers(max(int(low), 0) if kind == "u" else int(low), int(high))
    else:
        width: Literal[16, 32, 64] = 16 if dtype == "float16" else 32 if dtype == "float32" else 64
        elements = st.floats(low, high, width=width, allow_nan=False, allow_infinity=False)
    return hnp.arrays(dtype, shape, elements=elements)


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5)


@st.composite
def broadcast_pair(draw: st.DrawFn, dtypes: tuple[str, ...] = FLOAT_DTYPES) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays whose shapes broadcast together."""
    (sa, sb), _ = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4))
    return draw(arrays(draw(st.sampled_from(dtypes)), sa)), draw(arrays(draw(st.sampled_from(dtypes)), sb))


@st.composite
def non_contiguous(draw: st.DrawFn, dtype: str = "float64") -> np.ndarray:
    """A strided, transposed view of a larger array (numpy's non-contiguous layouts)."""
    base = draw(arrays(dtype, draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=6))))
    view = base[..., ::2] if draw(st.booleans()) else base
    return view.transpose() if draw(st.booleans()) else view
