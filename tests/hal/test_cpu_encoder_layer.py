"""The cpu device's ``encoder_layer`` kernel: a whole transformer encoder layer in one compiled call,
against a float64 reference and, bit for bit, against the ops ``EncoderLayer`` composes otherwise."""

# numpy's stubs type many array expressions as Any
# mypy: disable-error-code="no-any-return"

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

import accelerate_lab as al
from accelerate_lab.errors import ShapeError, UnsupportedKernelError
from accelerate_lab.hal import CpuDevice, cpu_nn
from accelerate_lab.models.layers import MLP, Attention, EncoderLayer, LayerNorm, Linear, run_layers
from tests.hal.test_cpu_kernels import run

# the kernel exists only compiled: without a compiler the cpu device does not offer it
pytestmark = pytest.mark.usefixtures("compiled_kernels")


def weights(width: int, inner: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Fresh float32 weights in the kernel's order, scaled as a trained layer's roughly are."""
    shapes = [(width, 3 * width), (3 * width,), (width, width), (width,), (width,), (width,)]
    shapes += [(width, inner), (inner,), (inner, width), (width,), (width,), (width,)]
    out = [
        (rng.standard_normal(s) / math.sqrt(s[0] if len(s) == 2 else 4)).astype(np.float32) for s in shapes
    ]
    for norm in (4, 10):
        out[norm] += 1  # the norms' weights near 1
    return out


def reference(
    x: np.ndarray, keep: np.ndarray | None, w: list[np.ndarray], heads: int, eps: float, pre_norm: bool
) -> np.ndarray:
    """The layer in float64 from its definition (exact gelu, softmax over the keys kept)."""
    w64 = [a.astype(np.float64) for a in w]
    qkv_w, qkv_b, out_w, out_b, n1_w, n1_b, up_w, up_b, down_w, down_b, n2_w, n2_b = w64
    b, length, d = x.shape

    def norm(h: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        centered = h - h.mean(-1, keepdims=True)
        return centered / np.sqrt((centered**2).mean(-1, keepdims=True) + eps) * weight + bias

    def attention(h: np.ndarray) -> np.ndarray:
        q, k, v = np.split(h @ qkv_w + qkv_b, 3, axis=-1)
        q, k, v = (a.reshape(b, length, heads, -1).transpose(0, 2, 1, 3) for a in (q, k, v))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads)
        if keep is not None:
            scores = np.where(keep[:, None, None, :], scores, -np.inf)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attended = (scores / scores.sum(-1, keepdims=True)) @ v
        return attended.transpose(0, 2, 1, 3).reshape(b, length, d) @ out_w + out_b

    def mlp(h: np.ndarray) -> np.ndarray:
        up = h @ up_w + up_b
        return (0.5 * up * (1 + erf(up / math.sqrt(2)))) @ down_w + down_b

    h = x.astype(np.float64)
    if pre_norm:
        h = h + attention(norm(h, n1_w, n1_b))
        return h + mlp(norm(h, n2_w, n2_b))
    h = norm(h + attention(h), n1_w, n1_b)
    return norm(h + mlp(h), n2_w, n2_b)


def padding(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """A (B, 1, 1, L) "may attend" mask: each item keeps a first stretch of keys, the first whole."""
    kept = np.concatenate([[length], rng.integers(1, length + 1, batch - 1)])
    return (np.arange(length)[None, :] < kept[:, None]).reshape(batch, 1, 1, length)


# (batch, length, width, heads, inner): BERT-like, rows no tile divides, one token, 256+ rows (AMX)
SHAPES = [(2, 16, 64, 4, 256), (3, 13, 48, 2, 96), (1, 1, 32, 4, 64), (2, 150, 96, 3, 192)]


@pytest.mark.parametrize("pre_norm", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padding"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_layer_against_float64(shape: tuple[int, ...], masked: bool, pre_norm: bool) -> None:
    b, length, d, heads, inner = shape
    rng = np.random.default_rng()
    x = rng.standard_normal((b, length, d)).astype(np.float32)
    w = weights(d, inner, rng)
    mask = padding(b, length, rng) if masked else None
    out = run("encoder_layer", x, mask, *w, heads=heads, eps=1e-5, pre_norm=pre_norm)
    expected = reference(x, None if mask is None else mask[:, 0, 0], w, heads, 1e-5, pre_norm)
    assert out.shape == x.shape and out.dtype == np.float32
    # measured: up to 2e-6 of the largest output (float32 products of up to 256 terms and the norms)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def _layer(w: list[np.ndarray], heads: int, pre_norm: bool) -> EncoderLayer:
    t = [al.tensor(a) for a in w]
    return EncoderLayer(
        Attention(Linear(t[0], t[1]), Linear(t[2], t[3]), heads),
        LayerNorm(t[4], t[5], 1e-12),
        MLP(Linear(t[6], t[7]), Linear(t[8], t[9]), "gelu"),
        LayerNorm(t[10], t[11], 1e-12),
        pre_norm,
    )


@pytest.mark.parametrize("pre_norm", [False, True], ids=["post-norm", "pre-norm"])
def test_a_stack_of_layers_against_float64(pre_norm: bool) -> None:
    rng = np.random.default_rng()
    x = rng.standard_normal((2, 20, 48)).astype(np.float32)
    stack = [weights(48, 96, rng) for _ in range(3)]
    mask = padding(2, 20, rng)
    out = run(
        "encoder_layer", x, mask, *(w for layer in stack for w in layer), heads=4, eps=1e-5, pre_norm=pre_norm
    )
    expected = x
    for layer in stack:
        expected = reference(expected, mask[:, 0, 0], layer, 4, 1e-5, pre_norm)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("pre_norm", [False, True], ids=["post-norm", "pre-norm"])
def test_encoder_layer_runs_one_kernel_with_the_bits_of_its_composition(
    pre_norm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng()
    layer = _layer(weights(64, 128, rng), heads=4, pre_norm=pre_norm)
    x, mask = al.tensor(rng.standard_normal((3, 24, 64)).astype(np.float32)), al.tensor(padding(3, 24, rng))
    stack = [layer, _layer(weights(64, 128, rng), heads=4, pre_norm=pre_norm)]
    device = al.get_device("cpu")
    before = device.stats.dispatches
    fused = layer(x, mask).numpy(), run_layers(stack, x, mask).numpy()
    assert device.stats.dispatches - before == 2  # one kernel for the layer, one for the stack
    with monkeypatch.context() as patch:
        supports = CpuDevice.supports
        patch.setattr(CpuDevice, "supports", lambda self, k: k != "encoder_layer" and supports(self, k))
        composed = layer(x, mask).numpy(), run_layers(stack, x, mask).numpy()
    np.testing.assert_array_equal(fused[0], composed[0])
    np.testing.assert_array_equal(fused[1], composed[1])


def test_layers_the_kernel_cannot_run_are_composed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A causal mask, another activation, gradients, float16 or no compiled kernels: the ops compose."""
    rng = np.random.default_rng()
    w = weights(32, 64, rng)
    x = al.tensor(rng.standard_normal((2, 8, 32)).astype(np.float32))
    layer = _layer(w, heads=2, pre_norm=True)
    quick = EncoderLayer(
        layer.attention,
        layer.attention_norm,
        MLP(layer.mlp.up, layer.mlp.down, "quick_gelu"),
        layer.mlp_norm,
        True,
    )
    trained = al.tensor(rng.standard_normal((2, 8, 32)).astype(np.float32), requires_grad=True)
    half = al.tensor(x.numpy().astype(np.float16))
    device = al.get_device("cpu")
    cases = [(layer, x, True), (quick, x, False), (layer, trained, False), (layer, half, False)]
    for case, inputs, causal in cases:
        before = device.stats.dispatches
        case(inputs, is_causal=causal)
        assert device.stats.dispatches - before > 1
    before = device.stats.dispatches
    quick(x)
    composed = device.stats.dispatches - before
    before = device.stats.dispatches
    run_layers([layer, layer, quick], x)  # not all of them: layer by layer, the first two fused
    assert device.stats.dispatches - before == 2 + composed
    with monkeypatch.context() as patch:
        patch.setattr(cpu_nn, "library", lambda: None)
        assert not CpuDevice().supports("encoder_layer")
        np.testing.assert_allclose(layer(x).numpy(), reference(x.numpy(), None, w, 2, 1e-12, True), atol=1e-4)


def test_shapes_and_dtypes_it_does_not_take_are_refused() -> None:
    rng = np.random.default_rng()
    x, w = rng.standard_normal((1, 4, 8)).astype(np.float32), weights(8, 16, rng)
    with pytest.raises(ShapeError, match=r"layer 0 out_weight \(8, 9\) \(not \(8, 8\)\)"):
        run(
            "encoder_layer",
            x,
            None,
            *w[:2],
            np.ones((8, 9), np.float32),
            *w[3:],
            heads=2,
            eps=1e-5,
            pre_norm=False,
        )
    with pytest.raises(ShapeError, match="12 weights per layer"):
        run("encoder_layer", x, None, *w, *w[:5], heads=2, eps=1e-5, pre_norm=False)
    with pytest.raises(ShapeError, match="3 heads"):
        run("encoder_layer", x, None, *w, heads=3, eps=1e-5, pre_norm=False)
    with pytest.raises(ShapeError, match=r"mask \(1, 4\)"):
        run("encoder_layer", x, np.ones((1, 4), bool), *w, heads=2, eps=1e-5, pre_norm=False)
    with pytest.raises(UnsupportedKernelError, match="float32"):
        run("encoder_layer", x.astype(np.float64), None, *w, heads=2, eps=1e-5, pre_norm=False)
