"""Building blocks shared by every model: linear, layer norm, attention, MLP and the encoder layer.

BERT (post-norm), ViT, CLIP and Whisper's encoder (pre-norm) all run `EncoderLayer`; only the
tensor names in their checkpoints differ, which `LayerNames` records. Everything is tensor ops,
so the blocks run on any device.

>>> import accelerate_lab as al
>>> lin = Linear(al.ones([2, 3]), None)       # 2 -> 3 features, stored (in, out)
>>> lin(al.ones([1, 2])).tolist()
[[2.0, 2.0, 2.0]]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from accelerate_lab.hal.kernels import ENCODER_LAYER_WEIGHTS
from accelerate_lab.models.errors import WrongArchitectureError
from accelerate_lab.models.precision import quantize_q8
from accelerate_lab.models.weights import Weights
from accelerate_lab.tensor import Tensor, autograd, ops
from accelerate_lab.tensor.ops.dispatch import apply

__all__ = [
    "MLP",
    "Attention",
    "EncoderLayer",
    "EncoderSpec",
    "LayerNames",
    "LayerNorm",
    "Linear",
    "PatchEmbedding",
    "activation",
    "load_layers",
    "merge_heads",
    "padding_mask",
    "run_layers",
    "split_heads",
]

Activation = Callable[[Tensor], Tensor]


def _quick_gelu(x: Tensor) -> Tensor:
    return ops.mul(x, ops.sigmoid(ops.mul(x, 1.702)))


_ACTIVATIONS: dict[str, Activation] = {
    "gelu": ops.gelu,
    "gelu_new": lambda x: ops.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: ops.gelu(x, approximate="tanh"),
    "quick_gelu": _quick_gelu,
    "relu": ops.relu,
}


def activation(name: str) -> Activation:
    """The activation a config's ``hidden_act`` names."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise WrongArchitectureError(
            f"hidden_act {name!r} is not supported; supported: {', '.join(sorted(_ACTIVATIONS))}"
        ) from None


@dataclass(frozen=True)
class Linear:
    """``x @ weight + bias`` over the last axis; with ``scales``, 8-bit weights (``matmul_q8``).

    A float weight is held transposed, ``(in, out)`` and contiguous, and the leading axes are folded
    into one, so the product is a single plain matrix multiply (on the cpu one BLAS call, about
    2.5x faster than a batched product against PyTorch's ``(out, in)`` layout). A quantized weight
    is PyTorch's ``(out, in)`` as packed int8 rows with ``scales``, one float32 factor per output
    and per input channel (:func:`~accelerate_lab.models.precision.quantize_q8`), dequantized inside
    the kernel.
    """

    weight: Tensor
    bias: Tensor | None
    scales: tuple[Tensor, Tensor] | None = None  # quantized: per output, per input channel

    def __call__(
        self, x: Tensor, *, activation: Literal["none", "gelu"] = "none", residual: Tensor | None = None
    ) -> Tensor:
        """``activation(x @ weight + bias) + residual``, in one kernel where the device fuses them."""
        rows = ops.reshape(x, (-1, x.shape[-1]))
        width = self.weight.shape[0] if self.scales is not None else self.weight.shape[1]
        residual_rows = None if residual is None else ops.reshape(residual, (-1, width))
        if self.scales is None:
            out = ops.fused_linear(
                rows, self.weight, self.bias, activation=activation, residual=residual_rows
            )
        else:
            out = apply("matmul_q8", (rows, self.weight, *self.scales, self.bias))
            out = ops.gelu(out) if activation == "gelu" else out
            out = out if residual_rows is None else ops.add(out, residual_rows)
        return ops.reshape(out, (*x.shape[:-1], width))

    @classmethod
    def load(cls, w: Weights, name: str, out_features: int, in_features: int) -> Linear:
        """``name.weight`` (PyTorch's ``(out, in)``) and, when present, ``name.bias``."""
        return cls.fused(w, [name], out_features, in_features)

    @classmethod
    def fused(cls, w: Weights, names: Sequence[str], out_features: int, in_features: int) -> Linear:
        """Several same-shaped projections of one input as one (their outputs side by side).

        A projection without a bias (Whisper's key) gets zeros, so the product is unchanged.
        """
        readers = [w.reader(f"{n}.weight", (out_features, in_features)) for n in names]
        joined = "+".join(w.prefix + n for n in names)

        def weight() -> np.ndarray:  # read only where the device lacks it (see Weights.upload_later)
            return np.concatenate([read() for read in readers])

        scales = None
        if w.precision == "q8":
            quantized = functools.cache(lambda: quantize_q8(weight()))
            held = w.upload_later(f"{joined}.weight", lambda: quantized()[0])
            scales = (
                w.upload_later(f"{joined}.scale", lambda: quantized()[1]),
                w.upload_later(f"{joined}.x_scale", lambda: quantized()[2]),
            )
        else:
            held = w.upload_later(f"{joined}.weight", lambda: np.ascontiguousarray(weight().T))
        if not any(w.has(f"{n}.bias") for n in names):
            return cls(held, None, scales)
        zeros = functools.partial(np.zeros, out_features, np.float32)
        biases = [w.reader(f"{n}.bias", (out_features,)) if w.has(f"{n}.bias") else zeros for n in names]
        bias = w.upload_later(f"{joined}.bias", lambda: np.concatenate([read() for read in biases]))
        return cls(held, bias, scales)


@dataclass(frozen=True)
class LayerNorm:
    """Layer normalisation over the last axis."""

    weight: Tensor
    bias: Tensor
    eps: float

    def __call__(self, x: Tensor) -> Tensor:
        return ops.layer_norm(x, self.weight, self.bias, self.eps)

    @classmethod
    def load(cls, w: Weights, name: str, dim: int, eps: float) -> LayerNorm:
        return cls(w.tensor(f"{name}.weight", (dim,)), w.tensor(f"{name}.bias", (dim,)), eps)


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``(B, L, H*D)`` -> ``(B, H, L, D)``."""
    b, length, width = x.shape
    return ops.transpose(ops.reshape(x, (b, length, heads, width // heads)), (0, 2, 1, 3))


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, L, D)`` -> ``(B, L, H*D)``."""
    b, heads, length, dim = x.shape
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (b, length, heads * dim))


@dataclass(frozen=True)
class Attention:
    """Multi-head self-attention with one fused query/key/value projection."""

    qkv: Linear
    out: Linear
    heads: int

    def __call__(
        self, x: Tensor, mask: Tensor | None = None, is_causal: bool = False, residual: Tensor | None = None
    ) -> Tensor:
        """The attention of ``x`` to itself, plus ``residual`` where given."""
        b, length, width = x.shape
        qkv = ops.reshape(self.qkv(x), (b, length, 3, self.heads, width // self.heads))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B, H, L, D)
        attended = ops.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], mask=mask, is_causal=is_causal)
        return self.out(merge_heads(attended), residual=residual)


@dataclass(frozen=True)
class MLP:
    """``down(act(up(x)))``, ``act`` named as a config's ``hidden_act``."""

    up: Linear
    down: Linear
    act: str

    def __post_init__(self) -> None:
        activation(self.act)  # an unknown name fails at load time

    def __call__(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """``down(act(up(x)))``, plus ``residual`` where given; exact gelu fused into ``up``."""
        hidden = self.up(x, activation="gelu") if self.act == "gelu" else activation(self.act)(self.up(x))
        return self.down(hidden, residual=residual)


@dataclass(frozen=True)
class LayerNames:
    """Where a checkpoint keeps one layer's tensors, relative to the layer's prefix."""

    query: str
    key: str
    value: str
    out: str
    attention_norm: str
    up: str
    down: str
    mlp_norm: str


@dataclass(frozen=True)
class EncoderSpec:
    """The sizes and variant of a transformer encoder layer, from a model's config."""

    hidden: int
    heads: int
    intermediate: int
    eps: float
    act: str
    pre_norm: bool

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, default_eps: float, default_act: str, pre_norm: bool
    ) -> EncoderSpec:
        """From a transformers config; ``layer_norm_eps`` and ``hidden_act`` fall back to the defaults."""
        return cls(
            hidden=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            intermediate=int(config["intermediate_size"]),
            eps=float(config.get("layer_norm_eps", default_eps)),
            act=str(config.get("hidden_act", default_act)),
            pre_norm=pre_norm,
        )

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise WrongArchitectureError(
                f"hidden size {self.hidden} is not a multiple of {self.heads} heads: check config.json"
            )


@dataclass(frozen=True)
class EncoderLayer:
    """Attention then MLP, each with a residual; layer norm before (pre-norm) or after (post-norm)."""

    attention: Attention
    attention_norm: LayerNorm
    mlp: MLP
    mlp_norm: LayerNorm
    pre_norm: bool

    def __call__(self, x: Tensor, mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        fused = _fused_layers([self], x, mask, is_causal)
        if fused is not None:
            return fused
        if self.pre_norm:
            x = self.attention(self.attention_norm(x), mask, is_causal, residual=x)
            return self.mlp(self.mlp_norm(x), residual=x)
        x = self.attention_norm(self.attention(x, mask, is_causal, residual=x))
        return self.mlp_norm(self.mlp(x, residual=x))

    @functools.cached_property
    def kernel_weights(self) -> tuple[Tensor, ...] | None:
        """The twelve weights a device's ``encoder_layer`` kernel takes for this layer, in its order
        (`accelerate_lab.hal.kernels.ENCODER_LAYER_WEIGHTS`), or None where the kernel cannot run it:
        8-bit weights, a product without bias, another activation than exact gelu, norms of two eps,
        dtypes other than float32."""
        linears = (self.attention.qkv, self.attention.out, self.mlp.up, self.mlp.down)
        norms = (self.attention_norm, self.mlp_norm)
        if (
            self.mlp.act != "gelu"
            or norms[0].eps != norms[1].eps
            or any(lin.scales is not None for lin in linears)
        ):
            return None
        pairs = [(lin.weight, lin.bias) for lin in linears]
        pairs[2:2] = [(norms[0].weight, norms[0].bias)]
        pairs.append((norms[1].weight, norms[1].bias))
        weights = [t for pair in pairs for t in pair]
        if any(t is None or t.dtype != "float32" for t in weights):
            return None
        return tuple(t for t in weights if t is not None)

    @classmethod
    def load(cls, w: Weights, prefix: str, names: LayerNames, spec: EncoderSpec) -> EncoderLayer:
        d, n = spec.hidden, names
        attention = Attention(
            Linear.fused(w, [f"{prefix}.{n.query}", f"{prefix}.{n.key}", f"{prefix}.{n.value}"], d, d),
            Linear.load(w, f"{prefix}.{n.out}", d, d),
            spec.heads,
        )
        mlp = MLP(
            Linear.load(w, f"{prefix}.{n.up}", spec.intermediate, d),
            Linear.load(w, f"{prefix}.{n.down}", d, spec.intermediate),
            spec.act,
        )
        return cls(
            attention,
            LayerNorm.load(w, f"{prefix}.{n.attention_norm}", d, spec.eps),
            mlp,
            LayerNorm.load(w, f"{prefix}.{n.mlp_norm}", d, spec.eps),
            spec.pre_norm,
        )


@dataclass(frozen=True)
class PatchEmbedding:
    """Pixels ``(B, C, H, W)`` -> a class token, one token per patch, plus positions (ViT, CLIP)."""

    weight: Tensor  # (D, C, P, P): a convolution with stride P
    bias: Tensor | None
    class_token: Tensor  # (D,)
    positions: Tensor  # (1 + patches, D)
    patch: int

    def __call__(self, pixels: Tensor) -> Tensor:
        x = ops.conv2d(pixels, self.weight, self.bias, stride=self.patch)
        b, d = x.shape[:2]
        x = ops.transpose(ops.reshape(x, (b, d, -1)), (0, 2, 1))
        cls = ops.broadcast_to(ops.reshape(self.class_token, (1, 1, d)), (b, 1, d))
        tokens = ops.concat([cls, x], 1)
        return ops.add(tokens, self.positions[: tokens.shape[1]])


def load_layers(
    w: Weights, prefix: str, count: int, names: LayerNames, spec: EncoderSpec
) -> list[EncoderLayer]:
    """The ``count`` encoder layers ``prefix.0``, ``prefix.1``, ... of a checkpoint."""
    return [EncoderLayer.load(w, f"{prefix}.{i}", names, spec) for i in range(count)]


def run_layers(
    layers: Sequence[EncoderLayer], x: Tensor, mask: Tensor | None = None, is_causal: bool = False
) -> Tensor:
    """``x`` through each layer in turn: all of them in one ``encoder_layer`` kernel where the device
    has it and it can run them, else layer by layer."""
    fused = _fused_layers(layers, x, mask, is_causal)
    if fused is not None:
        return fused
    for layer in layers:
        x = layer(x, mask, is_causal)
    return x


def _fused_layers(
    layers: Sequence[EncoderLayer], x: Tensor, mask: Tensor | None, is_causal: bool
) -> Tensor | None:
    """``layers`` applied to ``x`` by the device's ``encoder_layer`` kernel, or None (nothing run)
    where their ops must compose them: no such kernel, a causal, float or per-query mask, gradients
    wanted, a layer the kernel cannot run (`EncoderLayer.kernel_weights`), layers of different heads,
    eps or norm placement. The cpu's kernel runs the whole stack in one compiled call: a BERT forward
    at 1 x 128 tokens spends ~1 ms outside its kernels instead of ~4 (Python's steps between kernels
    meet caches that the products have just flushed)."""
    if (
        is_causal
        or not layers
        or x.rank != 3
        or x.dtype != "float32"
        or (mask is not None and (mask.dtype != "bool" or mask.shape != (x.shape[0], 1, 1, x.shape[1])))
        or not x._device.supports("encoder_layer")
    ):
        return None
    weights = [layer.kernel_weights for layer in layers]
    settings = {(layer.attention.heads, layer.attention_norm.eps, layer.pre_norm) for layer in layers}
    flat = [t for ours in weights if ours is not None for t in ours]
    if len(flat) != len(ENCODER_LAYER_WEIGHTS) * len(layers) or len(settings) != 1:
        return None
    if autograd.is_grad_enabled() and any(t.requires_grad for t in (x, *flat)):
        return None
    heads, eps, pre_norm = settings.pop()
    return apply("encoder_layer", [x, mask, *flat], {"heads": heads, "eps": eps, "pre_norm": pre_norm})


def padding_mask(attention_mask: Tensor) -> Tensor:
    """A ``(B, S)`` 0/1 mask as a boolean ``(B, 1, 1, S)`` "may attend" mask for attention."""
    b, s = attention_mask.shape
    return ops.ne(ops.reshape(attention_mask, (b, 1, 1, s)), 0)
