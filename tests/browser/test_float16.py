"""Float16 on the browser device. The headless Chromium here offers no ``shader-f16`` (SwiftShader
has no float16), so the float16 kernels run through ``tests/browser/replay.py``: the widget's own
kernel code (kernels.ts, elementwise.ts, shaders.ts) prepares and records each dispatch in Node, and
the native adapter (lavapipe, which has shader-f16) runs it; both the software adapters' kernels and
the GPUs'. Each float kernel in float16 is checked against numpy in float64 on the same (float16)
inputs, a tiny random BERT at ``dtype="fp16"`` against ``dtype="fp32"``; dense float16 bytes cross the
real page both ways, and the real page runs a float16 kernel where its adapter has shader-f16 (and
here, where it has not, refuses it before sending anything).

Tolerance of the kernels: the shaders widen float16 to f32 and accumulate in f32, so a result is off
by its own rounding to float16 (2^-11 relative) plus f32 noise: each must be within 2e-3 of the
reference, relative to the element and to the largest magnitude of the result (``_close``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accelerate_lab.errors import UnsupportedKernelError
from accelerate_lab.hal import get_device
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.models import BERT
from tests.browser.conftest import require_browser_tools
from tests.browser.harness import host
from tests.browser.replay import ESBUILD, bundle, replay_device
from tests.browser.test_kernels import fetch, run_kernel
from tests.models.conftest import cosine, tiny_bert_dir  # noqa: F401  (the tiny BERT of the model tests)

pytestmark = pytest.mark.browser

rng = np.random.default_rng(16)
TOLERANCE = 2e-3


def f16(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return rng.uniform(low, high, shape).astype(np.float16)


def f32(*shape: int) -> np.ndarray:
    return rng.uniform(-2.0, 2.0, shape).astype(np.float32)


IDS = np.array([[0, 3, 1], [4, 4, 2]], dtype=np.int32)
CONV2 = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}
CONV1 = {"stride": (1,), "padding": (2,), "dilation": (1,), "groups": 1}
Q8 = rng.integers(-127, 128, (9, 48), dtype=np.int8).view(np.int32)  # (9, 45) int8 weights, packed
CAUSAL = {"is_causal": True, "scale": 0.3}
PLAIN = {"is_causal": False, "scale": None}

# (id, kernel, inputs, params, dtype of the result): float16 tensors, float32 where a kernel mixes them
CASES: list[tuple[str, str, Sequence[Any], Mapping[str, object], str]] = [
    ("matmul", "matmul", [f16(5, 7), f16(7, 3)], {}, "float16"),
    ("matmul-batch-broadcast", "matmul", [f16(2, 1, 4, 6), f16(3, 6, 5)], {}, "float16"),
    ("matmul-vector", "matmul", [f16(6), f16(6, 4)], {}, "float16"),
    ("matmul-tiles", "matmul", [f16(40, 33), f16(33, 37)], {}, "float16"),
    ("matmul-mixed", "matmul", [f16(5, 7), f32(7, 3)], {}, "float32"),
    ("matmul_q8", "matmul_q8", [f16(6, 45), Q8, f32(9) / 100, f32(45), f32(9)], {}, "float16"),
    ("sum", "sum", [f16(3, 4, 5)], {"axis": (1,), "keepdims": False}, "float16"),
    ("sum-long-rows", "sum", [f16(3, 300)], {"axis": (1,), "keepdims": False}, "float16"),
    ("mean-keepdims", "mean", [f16(3, 4, 5)], {"axis": (0, 2), "keepdims": True}, "float16"),
    ("max", "max", [f16(3, 70)], {"axis": (1,), "keepdims": False}, "float16"),
    ("min", "min", [f16(3, 4)], {"axis": (0,), "keepdims": False}, "float16"),
    ("var", "var", [f16(4, 9)], {"axis": (1,), "keepdims": False, "correction": 1}, "float16"),
    ("argmax", "argmax", [f16(4, 9)], {"axis": (1,), "keepdims": False}, "int64"),
    ("softmax", "softmax", [f16(3, 5)], {"axis": 1}, "float16"),
    ("softmax-axis0", "softmax", [f16(3, 5)], {"axis": 0}, "float16"),
    ("log_softmax", "log_softmax", [f16(2, 3, 5)], {"axis": 2}, "float16"),
    ("layer_norm", "layer_norm", [f16(3, 8), f16(8), f16(8)], {"eps": 1e-5}, "float16"),
    ("layer_norm-f32-weights", "layer_norm", [f16(3, 8), f32(8), f32(8)], {"eps": 1e-5}, "float16"),
    ("layer_norm-plain", "layer_norm", [f16(3, 8), None, None], {"eps": 1e-5}, "float16"),
    ("embedding", "embedding", [IDS, f16(5, 4)], {}, "float16"),
    ("embedding_backward", "embedding_backward", [IDS, f16(2, 3, 4)], {"num_embeddings": 6}, "float16"),
    ("conv2d", "conv", [f16(2, 4, 7, 8), f16(6, 2, 3, 2), f16(6)], CONV2, "float16"),
    ("conv1d", "conv", [f16(1, 3, 9), f16(2, 3, 4), None], CONV1, "float16"),
    (
        "conv_backward_input",
        "conv_backward_input",
        [f16(2, 6, 4, 6), f16(6, 2, 3, 2)],
        {"input_shape": (2, 4, 7, 8), **CONV2},
        "float16",
    ),
    (
        "conv_backward_weight",
        "conv_backward_weight",
        [f16(2, 4, 7, 8), f16(2, 6, 4, 6)],
        {"weight_shape": (6, 2, 3, 2), **CONV2},
        "float16",
    ),
    ("sdpa", "sdpa", [f16(2, 3, 4), f16(2, 5, 4), f16(2, 5, 6), None], PLAIN, "float16"),
    ("sdpa-causal", "sdpa", [f16(2, 3, 4), f16(2, 3, 4), f16(2, 3, 6), None], CAUSAL, "float16"),
    (
        "sdpa-bool-mask",
        "sdpa",
        [f16(2, 3, 4), f16(2, 5, 4), f16(2, 5, 6), np.arange(15).reshape(3, 5) % 4 != 1],
        PLAIN,
        "float16",
    ),
    ("sdpa-float16-mask", "sdpa", [f16(2, 3, 4), f16(2, 5, 4), f16(2, 5, 6), f16(3, 5)], PLAIN, "float16"),
]


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_browser_tools()  # the bundle's build also installs esbuild
    assert ESBUILD.exists(), f"esbuild is missing at {ESBUILD}"
    return bundle(tmp_path_factory.mktemp("recorder"))


@pytest.fixture(scope="module", params=[True, False], ids=["software-kernels", "gpu-kernels"])
def f16_device(request: pytest.FixtureRequest, recorder: Path) -> Iterator[BrowserProxyDevice]:
    """``browser:webgpu`` with shader-f16, its kernels replayed on the native adapter."""
    device, transport = replay_device(recorder, software=request.param)
    yield device
    transport.close()


def _close(got: np.ndarray, want: np.ndarray) -> None:
    scale = float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=TOLERANCE, atol=TOLERANCE * scale)


@pytest.mark.parametrize(
    ("kernel", "inputs", "params", "dtype"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_float16_kernel_matches_numpy_in_float64(
    f16_device: BrowserProxyDevice,
    kernel: str,
    inputs: Sequence[Any],
    params: Mapping[str, object],
    dtype: str,
) -> None:
    wide = [x.astype(np.float64) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in inputs]
    want = np.asarray(get_device("cpu").run(kernel, wide, params))
    got = fetch(f16_device, run_kernel(f16_device, kernel, inputs, params))
    assert (got.shape, got.dtype.name) == (want.shape, dtype)
    if dtype == "int64":
        np.testing.assert_array_equal(got, want)
    else:
        _close(got, want)


def test_every_float_kernel_is_tested_in_float16() -> None:
    from tests.browser.test_kernels import CASES as FLOAT32_CASES

    floats = {
        c[1] for c in FLOAT32_CASES if any(isinstance(x, np.ndarray) and x.dtype == np.float32 for x in c[2])
    }
    elementwise = {
        "neg",
        "abs",
        "sign",
        "relu",
        "exp",
        "erf",
        "sigmoid",
        "tanh",
        "silu",
        "log",
        "sqrt",
        "gelu",
    }
    elementwise |= {"cast", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "copy"}
    elementwise |= {"eq", "ne", "lt", "le", "gt", "ge"}
    views = {"reshape", "transpose", "broadcast_to", "getitem", "setitem", "index_backward", "concat"}
    float32_only = {"matmul_q4_1", "matmul_q8_0"}  # GGUF activations are float32 on every device
    assert floats - elementwise - views - float32_only == {c[1] for c in CASES}


def test_heads_of_a_fused_float16_projection_attend_in_place(f16_device: BrowserProxyDevice) -> None:
    # BERT's layout: one (B, L, 3, H, D) projection, its strided q, k, v views, a (B, 1, 1, S) bool mask
    fused = f16(2, 5, 3, 3, 6)
    mask = rng.random((2, 1, 1, 5)) > 0.4
    mask[..., 0] = True
    split = fused.astype(np.float64).transpose(2, 0, 3, 1, 4)
    params = {"is_causal": False, "scale": 0.4}
    want = np.asarray(get_device("cpu").run("sdpa", [split[0], split[1], split[2], mask], params))
    heads = f16_device.run("transpose", [f16_device.upload(fused)], {"axes": (2, 0, 3, 1, 4)})
    q, k, v = (f16_device.run("getitem", [heads], {"index": (i,)}) for i in range(3))
    got = fetch(f16_device, f16_device.run("sdpa", [q, k, v, f16_device.upload(mask)], params))
    assert got.dtype == np.float16
    _close(got, want)


def test_strided_float16_views_download_through_the_copy_kernel(f16_device: BrowserProxyDevice) -> None:
    base = f16(7, 9)
    view = f16_device.run("getitem", [f16_device.upload(base)], {"index": (slice(1, None, 2), slice(3, 8))})
    np.testing.assert_array_equal(fetch(f16_device, view), base[1::2, 3:8])
    transposed = f16_device.run("transpose", [view], {"axes": (1, 0)})
    np.testing.assert_array_equal(fetch(f16_device, transposed), base[1::2, 3:8].T)


def _every_float16() -> np.ndarray:
    """Every float16 bit pattern but the NaNs, then one NaN and an odd length (the last word half used)."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    finite = bits[(bits & 0x7C00) != 0x7C00].view(np.float16)
    return np.concatenate([finite, np.array([np.inf, -np.inf, np.nan], np.float16)])


def test_float16_bytes_cross_the_page_both_ways_bit_exact(browser_device: BrowserProxyDevice) -> None:
    array = _every_float16()
    assert array.size % 2 == 1
    got = fetch(browser_device, browser_device.upload(array))
    assert got.dtype == np.float16 and got.shape == array.shape
    np.testing.assert_array_equal(got.view(np.uint16), array.view(np.uint16))


def test_the_page_runs_float16_kernels_where_its_adapter_has_shader_f16(
    browser_device: BrowserProxyDevice,
) -> None:
    x = f16(2, 3)
    if not browser_device.f16:  # SwiftShader: refused before anything is sent
        with pytest.raises(UnsupportedKernelError, match="float16 with shader-f16"):
            browser_device.run("softmax", [browser_device.upload(x)], {"axis": 1})
        return
    got = fetch(browser_device, browser_device.run("softmax", [browser_device.upload(x)], {"axis": 1}))
    _close(got, np.asarray(get_device("cpu").run("softmax", [x.astype(np.float64)], {"axis": 1})))


def test_tiny_bert_in_fp16_stays_within_cosine_0999_of_fp32(
    f16_device: BrowserProxyDevice,
    tiny_bert_dir: Path,  # noqa: F811
) -> None:
    ids = np.random.default_rng(0).integers(0, 99, (2, 11))
    mask = np.ones((2, 11), np.int64)
    mask[1, 7:] = 0  # the second sequence is padded: its last keys are masked out
    models = {d: BERT.from_pretrained(tiny_bert_dir, f16_device, dtype=d) for d in ("fp32", "fp16")}
    assert models["fp16"].weight_bytes * 2 == models["fp32"].weight_bytes
    outputs = {}
    for dtype, model in models.items():
        out = model(ids, attention_mask=mask)
        outputs[dtype] = [host(out[key]) for key in ("last_hidden_state", "pooler_output")]
    assert {o.dtype.name for o in outputs["fp16"]} == {"float16"}
    for ours, reference in zip(outputs["fp16"], outputs["fp32"], strict=True):
        rows = reference.reshape(-1, reference.shape[-1])
        assert cosine(ours.astype(np.float32).reshape(rows.shape), rows).min() >= 0.999
