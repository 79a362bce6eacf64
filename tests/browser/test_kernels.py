"""The fast tier: every kernel of the browser device, run by the bundle's WGSL in headless Chromium
(SwiftShader WebGPU), against the cpu device (numpy) on the same inputs."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from accelerate_lab.hal import get_device
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.hal.browser_errors import BrowserDataPending
from accelerate_lab.hal.browser_ops import BROWSER_KERNELS
from accelerate_lab.hal.device import Buffer, Device

pytestmark = pytest.mark.browser

rng = np.random.default_rng(5)


def f32(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return rng.uniform(low, high, shape).astype(np.float32)


def i32(*shape: int, high: int = 50) -> np.ndarray:
    return rng.integers(-high, high, shape).astype(np.int32)


X = f32(3, 4)
POS = f32(3, 4, low=0.1, high=3.0)
IDS = np.array([[0, 3, 1], [4, 4, 2]], dtype=np.int32)
CONV2 = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}
CONV1 = {"stride": (1,), "padding": (2,), "dilation": (1,), "groups": 1}
Q, K, V = f32(2, 3, 4), f32(2, 5, 4), f32(2, 5, 6)
Q8 = rng.integers(-127, 128, (35, 40), dtype=np.int8).view(np.int32)  # (35, 37) int8, packed and padded
# GGUF blocks of a (13, 64) weight: random codes, float16 scales (and Q4_1 minimums) in [-0.01, 0.01)
SCALES = rng.uniform(-0.01, 0.01, (26, 2)).astype(np.float16).view(np.uint8)
CODES = rng.integers(0, 256, (26, 32), dtype=np.uint8)
Q4_1 = np.concatenate([SCALES, CODES[:, :16]], 1).reshape(13, -1).view(np.int32)
Q8_0 = np.concatenate([SCALES[:, :2], CODES], 1).reshape(13, -1).view(np.int32)

# (id, kernel, inputs, params, relative tolerance); inputs are arrays (uploaded) or Python scalars
CASES: list[tuple[str, str, Sequence[Any], Mapping[str, object], float]] = [
    *[(op, op, [X], {}, 2e-6) for op in ("neg", "abs", "sign", "relu")],
    *[(op, op, [X], {}, 2e-5) for op in ("exp", "erf", "sigmoid", "tanh", "silu")],
    ("log", "log", [POS], {}, 2e-6),
    ("sqrt", "sqrt", [POS], {}, 2e-6),
    ("gelu", "gelu", [X], {"approximate": "none"}, 2e-5),
    ("gelu-tanh", "gelu", [X], {"approximate": "tanh"}, 2e-5),
    ("cast-f32-i32", "cast", [X * 10], {"dtype": np.dtype(np.int32)}, 0),
    ("cast-i32-f32", "cast", [i32(5)], {"dtype": np.dtype(np.float32)}, 0),
    ("cast-f32-bool", "cast", [np.array([0.0, 1.5, -0.0], np.float32)], {"dtype": np.dtype(np.bool_)}, 0),
    *[(op, op, [X, f32(4)], {}, 2e-6) for op in ("add", "sub", "mul", "maximum", "minimum")],
    ("div", "div", [X, POS], {}, 2e-6),
    ("pow", "pow", [POS, f32(3, 1)], {}, 2e-5),
    ("add-scalar", "add", [X, 2.5], {}, 2e-6),
    ("rsub-scalar", "sub", [1.0, X], {}, 2e-6),
    ("add-int32", "add", [i32(2, 3), i32(3)], {}, 0),
    ("mul-int32-scalar", "mul", [i32(4), 3], {}, 0),
    ("neg-int32", "neg", [i32(4)], {}, 0),
    ("add-uint8-wraps", "add", [np.array([250, 3], np.uint8), np.array([10, 4], np.uint8)], {}, 0),
    ("mul-bool", "mul", [np.array([True, False, True]), np.array([True, True, False])], {}, 0),
    *[(op, op, [X, f32(4)], {}, 0) for op in ("eq", "ne", "lt", "le", "gt", "ge")],
    ("lt-int32-scalar", "lt", [i32(6), 0], {}, 0),
    ("where", "where", [X > 0, X, f32(3, 1)], {}, 0),
    ("where-scalar", "where", [X > 0, X, 0.0], {}, 0),
    ("matmul", "matmul", [f32(5, 7), f32(7, 3)], {}, 1e-5),
    ("matmul-batch-broadcast", "matmul", [f32(2, 1, 4, 6), f32(3, 6, 5)], {}, 1e-5),
    ("matmul-vector", "matmul", [f32(6), f32(6, 4)], {}, 1e-5),
    ("matmul-large-tile", "matmul", [f32(40, 33), f32(33, 37)], {}, 1e-5),
    ("matmul_q8", "matmul_q8", [f32(40, 37), Q8, f32(35), f32(37), f32(35)], {}, 1e-4),
    ("matmul_q8-no-bias", "matmul_q8", [f32(3, 37), Q8, f32(35), f32(37), None], {}, 1e-4),
    ("matmul_q4_1", "matmul_q4_1", [f32(5, 64), Q4_1], {}, 1e-4),
    ("matmul_q8_0", "matmul_q8_0", [f32(1, 64), Q8_0], {}, 1e-4),
    ("sum", "sum", [f32(3, 4, 5)], {"axis": (1,), "keepdims": False}, 1e-5),
    ("sum-all", "sum", [f32(3, 4, 5)], {"axis": None, "keepdims": False}, 1e-5),
    ("mean-keepdims", "mean", [f32(3, 4, 5)], {"axis": (0, 2), "keepdims": True}, 1e-5),
    ("max", "max", [f32(3, 70)], {"axis": (1,), "keepdims": False}, 0),
    ("min", "min", [f32(3, 4)], {"axis": (0,), "keepdims": False}, 0),
    ("var", "var", [f32(4, 9)], {"axis": (1,), "keepdims": False, "correction": 1}, 1e-5),
    ("argmax", "argmax", [f32(4, 9)], {"axis": (1,), "keepdims": False}, 0),
    ("softmax", "softmax", [f32(3, 5)], {"axis": 1}, 1e-5),
    ("softmax-axis0", "softmax", [f32(3, 5)], {"axis": 0}, 1e-5),
    ("log_softmax", "log_softmax", [f32(2, 3, 5)], {"axis": 2}, 1e-5),
    ("layer_norm", "layer_norm", [f32(3, 8), f32(8), f32(8)], {"eps": 1e-5}, 1e-4),
    ("layer_norm-plain", "layer_norm", [f32(3, 8), None, None], {"eps": 1e-5}, 1e-4),
    ("embedding", "embedding", [IDS, f32(5, 4)], {}, 0),
    ("embedding_backward", "embedding_backward", [IDS, f32(2, 3, 4)], {"num_embeddings": 6}, 1e-5),
    ("conv2d", "conv", [f32(2, 4, 7, 8), f32(6, 2, 3, 2), f32(6)], CONV2, 1e-5),
    ("conv1d", "conv", [f32(1, 3, 9), f32(2, 3, 4), None], CONV1, 1e-5),
    (
        "conv_backward_input",
        "conv_backward_input",
        [f32(2, 6, 4, 6), f32(6, 2, 3, 2)],
        {"input_shape": (2, 4, 7, 8), **CONV2},
        1e-5,
    ),
    (
        "conv_backward_weight",
        "conv_backward_weight",
        [f32(2, 4, 7, 8), f32(2, 6, 4, 6)],
        {"weight_shape": (6, 2, 3, 2), **CONV2},
        1e-4,
    ),
    ("sdpa", "sdpa", [Q, K, V, None], {"is_causal": False, "scale": None}, 1e-5),
    ("sdpa-causal", "sdpa", [Q, f32(2, 3, 4), f32(2, 3, 6), None], {"is_causal": True, "scale": 0.3}, 1e-5),
    (
        "sdpa-bool-mask",
        "sdpa",
        [Q, K, V, rng.random((3, 5)) > 0.3],
        {"is_causal": False, "scale": None},
        1e-5,
    ),
    ("reshape", "reshape", [X], {"shape": (2, -1)}, 0),
    ("transpose", "transpose", [f32(2, 3, 4)], {"axes": (2, 0, 1)}, 0),
    ("broadcast_to", "broadcast_to", [f32(3, 1)], {"shape": (2, 3, 4)}, 0),
    ("copy", "copy", [X], {}, 0),
    ("getitem", "getitem", [f32(4, 5)], {"index": (slice(1, None, 2), Ellipsis, None, -1)}, 0),
    ("setitem", "setitem", [f32(4, 5), f32(5)], {"index": (slice(0, 2),)}, 0),
    ("setitem-scalar", "setitem", [f32(4, 5), 7.0], {"index": (Ellipsis, 1)}, 0),
    ("index_backward", "index_backward", [f32(2, 5)], {"shape": (4, 5), "index": (slice(1, 3),)}, 0),
    ("concat", "concat", [f32(2, 3), f32(1, 3), f32(4, 3)], {"axis": 0}, 0),
    ("concat-promotes", "concat", [i32(2, 2), np.array([[1, 2]], np.uint8)], {"axis": 0}, 0),
]


def fetch(device: BrowserProxyDevice, buffer: Buffer) -> np.ndarray:
    """Request the data (the test page answers during the request), then read it."""
    with contextlib.suppress(BrowserDataPending):
        return device.download(buffer)
    return device.download(buffer)


def run_kernel(device: Device, kernel: str, inputs: Sequence[Any], params: Mapping[str, object]) -> Buffer:
    """``kernel`` on ``device``, its array inputs uploaded there first."""
    uploaded = [device.upload(np.array(x)) if isinstance(x, np.ndarray) else x for x in inputs]
    return device.run(kernel, uploaded, params)


@pytest.mark.parametrize(
    ("kernel", "inputs", "params", "rtol"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_kernel_matches_numpy(
    browser_device: BrowserProxyDevice,
    kernel: str,
    inputs: Sequence[Any],
    params: Mapping[str, object],
    rtol: float,
) -> None:
    expected = run_kernel(get_device("cpu"), kernel, inputs, params)
    out = run_kernel(browser_device, kernel, inputs, params)
    got = fetch(browser_device, out)
    want = np.asarray(expected)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    if rtol:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    else:
        np.testing.assert_array_equal(got, want)


def test_every_browser_kernel_is_tested() -> None:
    assert {c[1] for c in CASES} == set(BROWSER_KERNELS)


def test_views_of_browser_buffers_download_strided(browser_device: BrowserProxyDevice) -> None:
    base = f32(4, 6)
    view = browser_device.run(
        "getitem", [browser_device.upload(base)], {"index": (slice(None, None, -2), slice(1, 5))}
    )
    transposed = browser_device.run("transpose", [view], {"axes": (1, 0)})
    np.testing.assert_array_equal(fetch(browser_device, transposed), base[::-2, 1:5].T)


@pytest.mark.parametrize(
    ("mask_kind", "is_causal"), [("none", True), ("bool", False), ("float", False), ("bool", True)]
)
def test_sdpa_reads_heads_of_a_fused_projection_in_place(
    browser_device: BrowserProxyDevice, mask_kind: str, is_causal: bool
) -> None:
    # BERT's layout: one (B, L, 3, H, D) projection, its q, k and v strided views, a (B, 1, 1, S) mask
    b, length, heads, dim = 2, 5, 3, 6
    fused = f32(b, length, 3, heads, dim)
    bool_mask = rng.random((b, 1, 1, length)) > 0.4
    bool_mask[..., 0] = True  # every row keeps a key (numpy gives NaN for rows that keep none)
    mask = {"none": None, "bool": bool_mask, "float": f32(b, 1, length, length)}[mask_kind]
    params = {"is_causal": is_causal, "scale": 0.4}
    split = fused.transpose(2, 0, 3, 1, 4)
    want = np.asarray(get_device("cpu").run("sdpa", [split[0], split[1], split[2], mask], params))
    heads_view = browser_device.run("transpose", [browser_device.upload(fused)], {"axes": (2, 0, 3, 1, 4)})
    q, k, v = (browser_device.run("getitem", [heads_view], {"index": (i,)}) for i in range(3))
    m = None if mask is None else browser_device.upload(mask)
    got = fetch(browser_device, browser_device.run("sdpa", [q, k, v, m], params))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sdpa_over_three_unmergeable_batch_axes(browser_device: BrowserProxyDevice) -> None:
    # q's batch axes (3, 2, 4) permuted out of (2, 3, 4): no two merge, so the operands go dense
    base, k, v = f32(2, 3, 4, 3, 5), f32(3, 2, 4, 7, 5), f32(3, 2, 4, 7, 2)
    mask = rng.random((4, 3, 7)) > 0.3
    mask[..., 0] = True
    params = {"is_causal": False, "scale": None}
    want = np.asarray(get_device("cpu").run("sdpa", [base.transpose(1, 0, 2, 3, 4), k, v, mask], params))
    q = browser_device.run("transpose", [browser_device.upload(base)], {"axes": (1, 0, 2, 3, 4)})
    inputs = [q, *(browser_device.upload(x) for x in (k, v, mask))]
    got = fetch(browser_device, browser_device.run("sdpa", inputs, params))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_matmul_reads_transposed_and_sliced_operands(browser_device: BrowserProxyDevice) -> None:
    # a: every other row of a transposed matrix; b: a transposed batch, broadcast against a's
    a, b = f32(2, 19, 23), f32(3, 11, 19)
    want = np.matmul(a.transpose(0, 2, 1)[:, None, 1::2], b.transpose(0, 2, 1))
    a_view = browser_device.run("transpose", [browser_device.upload(a)], {"axes": (0, 2, 1)})
    a_view = browser_device.run("getitem", [a_view], {"index": (slice(None), None, slice(1, None, 2))})
    b_view = browser_device.run("transpose", [browser_device.upload(b)], {"axes": (0, 2, 1)})
    got = fetch(browser_device, browser_device.run("matmul", [a_view, b_view], {}))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
