"""The kernel catalogue: every device-level operation, by name, with its inputs and parameters.

A device implements these names (`Device.run(name, inputs, params)`); the tensor ops above
``hal`` only ever call them. The cpu device implements all of them with numpy; others may
implement a subset and fall back to the cpu visibly (see ``DeviceStats.cpu_fallbacks``).

Conventions: ``axis`` parameters are already normalised to non-negative ints (a tuple for
reductions, ``None`` meaning all axes); ``index`` is a tuple of ``int | slice | None | Ellipsis``
(basic indexing); every kernel returns a new buffer except ``setitem``, which writes in place.

``matmul_q8`` is ``x @ W.T + bias`` for 8-bit weight-only quantized linear layers, the ``(N, K)``
weights ``W = scale[:, None] * q * x_scale[None, :]`` held as int8 ``q``: ``x`` is ``(M, K)`` float32
or float16, ``weight`` ``(N, ceil(K / 4))`` int32 holding the signed bytes of ``q`` row by row
(little-endian, four to a word, rows padded with zeros), ``scale`` ``(N,)`` the float32 step of each
output channel, ``x_scale`` ``(K,)`` a float32 factor per input channel (applied to ``x``), ``bias``
``(N,)`` optional; the result is ``(M, N)`` in ``x``'s dtype.

``fused_linear`` is ``activation(x @ weight + bias) + residual`` for a ``(M, K)`` ``x``, a ``(K, N)``
``weight``, an optional ``(N,)`` ``bias`` and ``(M, N)`` ``residual``, ``activation`` ``"none"`` or
``"gelu"`` (exact). It is one of the :data:`FUSED_KERNELS`: a device may implement them to speed up
a composition of the kernels above (the cpu adds bias and residual inside its BLAS call); the tensor
op composes them where ``Device.supports`` says no.

``encoder_layer`` is one or more transformer encoder layers applied in turn
(`accelerate_lab.models.layers.EncoderLayer` composes each from ``fused_linear``, ``sdpa`` and
``layer_norm``): float32 ``x`` ``(B, L, D)``; ``mask`` bool ``(B, 1, 1, L)``, True where a key may be
attended to, or None; then twelve weights per layer (:data:`ENCODER_LAYER_WEIGHTS`): the
query/key/value product's ``(D, 3D)`` weight (queries, keys, values side by side, each ``heads``
heads) and ``(3D,)`` bias, the output product's ``(D, D)`` and ``(D,)``, the first norm's ``(D,)``
weight and bias, the MLP's ``(D, F)``, ``(F,)``, ``(F, D)``, ``(D,)`` (exact gelu between its
products), the second norm's ``(D,)`` weight and bias; ``eps`` every norm's. ``pre_norm`` False
(BERT): ``x = norm1(x + attention(x))``, then ``norm2(x + mlp(x))``; True (ViT, Whisper's encoder):
``x = x + attention(norm1(x))``, then ``x + mlp(norm2(x))``. The result is ``(B, L, D)`` float32.

``matmul_q4_1`` and ``matmul_q8_0`` are ``x @ W.T`` with the ``(N, K)`` weight ``W`` in GGUF's block
format (`accelerate_lab.hal.gguf_quant`): ``x`` is ``(M, K)`` float32 (``K`` a multiple of 32),
``weight`` ``(N, row_words)`` int32 holding each row's packed blocks; the result is ``(M, N)`` float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelerate_lab.errors import ShapeError
from accelerate_lab.hal.device import Buffer
from accelerate_lab.hal.gguf_quant import BLOCK_SIZE, GGUF_KERNELS, row_words

__all__ = [
    "ENCODER_LAYER_WEIGHTS",
    "FUSED_KERNELS",
    "KERNELS",
    "KernelSpec",
    "encoder_layer_shape",
    "kernel_names",
    "matmul_gguf_shape",
    "matmul_q8_shape",
]


@dataclass(frozen=True)
class KernelSpec:
    """One kernel: its family, input names (``?`` marks optional, ``*`` variadic) and parameters."""

    name: str
    family: str
    inputs: tuple[str, ...]
    params: tuple[str, ...] = ()


def _family(
    family: str, names: str, inputs: tuple[str, ...], params: tuple[str, ...] = ()
) -> list[KernelSpec]:
    return [KernelSpec(name, family, inputs, params) for name in names.split()]


KERNELS: dict[str, KernelSpec] = {
    spec.name: spec
    for spec in [
        *_family("unary", "neg exp log sqrt abs sign erf relu sigmoid tanh silu", ("x",)),
        KernelSpec("gelu", "unary", ("x",), ("approximate",)),
        KernelSpec("cast", "unary", ("x",), ("dtype",)),
        *_family("binary", "add sub mul div pow maximum minimum eq ne lt le gt ge", ("a", "b")),
        KernelSpec("where", "ternary", ("condition", "a", "b")),
        KernelSpec("matmul", "linalg", ("a", "b")),
        KernelSpec("matmul_q8", "quantized", ("x", "weight", "scale", "x_scale", "bias?")),
        *_family("gguf", " ".join(GGUF_KERNELS), ("x", "weight")),
        *_family("reduce", "sum mean max min", ("x",), ("axis", "keepdims")),
        KernelSpec("var", "reduce", ("x",), ("axis", "keepdims", "correction")),
        KernelSpec("argmax", "reduce", ("x",), ("axis", "keepdims")),
        *_family("normalize", "softmax log_softmax", ("x",), ("axis",)),
        KernelSpec("layer_norm", "normalize", ("x", "weight?", "bias?"), ("eps",)),
        KernelSpec("embedding", "gather", ("ids", "table")),
        KernelSpec("embedding_backward", "gather", ("ids", "grad"), ("num_embeddings",)),
        KernelSpec("conv", "conv", ("x", "weight", "bias?"), ("stride", "padding", "dilation", "groups")),
        KernelSpec(
            "conv_backward_input",
            "conv",
            ("grad", "weight"),
            ("input_shape", "stride", "padding", "dilation", "groups"),
        ),
        KernelSpec(
            "conv_backward_weight",
            "conv",
            ("x", "grad"),
            ("weight_shape", "stride", "padding", "dilation", "groups"),
        ),
        KernelSpec("sdpa", "attention", ("q", "k", "v", "mask?"), ("is_causal", "scale")),
        KernelSpec("reshape", "layout", ("x",), ("shape",)),
        KernelSpec("transpose", "layout", ("x",), ("axes",)),
        KernelSpec("broadcast_to", "layout", ("x",), ("shape",)),
        KernelSpec("copy", "layout", ("x",)),
        KernelSpec("getitem", "layout", ("x",), ("index",)),
        KernelSpec("setitem", "layout", ("x", "value"), ("index",)),
        KernelSpec("index_backward", "layout", ("grad",), ("shape", "index")),
        KernelSpec("concat", "layout", ("*xs",), ("axis",)),
    ]
}


ENCODER_LAYER_WEIGHTS = (
    *("qkv_weight", "qkv_bias", "out_weight", "out_bias", "attention_norm_weight", "attention_norm_bias"),
    *("up_weight", "up_bias", "down_weight", "down_bias", "mlp_norm_weight", "mlp_norm_bias"),
)

FUSED_KERNELS: dict[str, KernelSpec] = {
    "fused_linear": KernelSpec(
        "fused_linear", "fused", ("x", "weight", "bias?", "residual?"), ("activation",)
    ),
    "encoder_layer": KernelSpec(
        "encoder_layer", "fused", ("x", "mask?", "*weights"), ("heads", "eps", "pre_norm")
    ),
}


def kernel_names() -> list[str]:
    """All kernel names, sorted."""
    return sorted(KERNELS)


def matmul_q8_shape(
    x: Buffer, weight: Buffer, scale: Buffer, x_scale: Buffer, bias: Buffer | None
) -> tuple[int, int]:
    """``(M, N)`` of ``matmul_q8``; `ShapeError` (or `TypeError` for the weight's dtype) when they do not fit.

    >>> import numpy as np
    >>> matmul_q8_shape(np.ones((5, 37)), np.ones((3, 10), np.int32), np.ones(3), np.ones(37), None)
    (5, 3)
    """
    if weight.dtype != np.dtype(np.int32):
        raise TypeError(
            f"matmul_q8 takes its weight as int32 words of packed int8 bytes, not {weight.dtype.name}: "
            "quantize it with accelerate_lab.models.precision.quantize_q8"
        )
    if len(x.shape) != 2 or len(weight.shape) != 2:
        raise ShapeError(f"matmul_q8 takes a 2-D x and packed weight, got {x.shape} and {weight.shape}")
    (m, k), (n, words) = x.shape, weight.shape
    fits = words == -(-k // 4) and scale.shape == (n,) and x_scale.shape == (k,)
    if not fits or (bias is not None and bias.shape != (n,)):
        raise ShapeError(
            f"matmul_q8: x {x.shape} needs a packed weight (N, {-(-k // 4)}), scale and bias (N,) and "
            f"x_scale ({k},); got weight {weight.shape}, scale {scale.shape}, x_scale {x_scale.shape}, "
            f"bias {None if bias is None else bias.shape}"
        )
    return m, n


def matmul_gguf_shape(kernel: str, x: Buffer, weight: Buffer) -> tuple[int, int]:
    """``(M, N)`` of ``matmul_q4_1``/``matmul_q8_0``; `ShapeError` (`TypeError`: dtypes) when they do not fit.

    >>> import numpy as np
    >>> matmul_gguf_shape("matmul_q4_1", np.ones((2, 64), np.float32), np.ones((3, 10), np.int32))
    (2, 3)
    """
    if weight.dtype != np.dtype(np.int32) or x.dtype != np.dtype(np.float32):
        raise TypeError(
            f"{kernel} takes float32 x and int32 words of packed blocks, not {x.dtype.name} and "
            f"{weight.dtype.name}: pack the blocks with accelerate_lab.hal.gguf_quant.pack_rows"
        )
    if len(x.shape) != 2 or len(weight.shape) != 2:
        raise ShapeError(f"{kernel} takes a 2-D x and packed weight, got {x.shape} and {weight.shape}")
    (m, k), (n, words) = x.shape, weight.shape
    if k % BLOCK_SIZE or words != row_words(GGUF_KERNELS[kernel], k):
        raise ShapeError(
            f"{kernel}: x {x.shape} needs K a multiple of {BLOCK_SIZE} and a packed weight "
            f"(N, {row_words(GGUF_KERNELS[kernel], k - k % BLOCK_SIZE)}); got weight {weight.shape}"
        )
    return m, n


def encoder_layer_shape(x: Buffer, mask: Buffer | None, weights: tuple[Buffer, ...], heads: int) -> int:
    """The number of layers of an ``encoder_layer``; `ShapeError` where the shapes do not fit.

    >>> import numpy as np
    >>> d, f = 4, 8
    >>> shapes = [(d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, f), (f,), (f, d), (d,), (d,), (d,)]
    >>> encoder_layer_shape(np.ones((1, 5, d)), None, tuple(np.ones(s) for s in shapes * 2), heads=2)
    2
    """
    per_layer = len(ENCODER_LAYER_WEIGHTS)
    if len(x.shape) != 3 or not weights or len(weights) % per_layer:
        raise ShapeError(
            f"encoder_layer takes x (B, L, D) and {per_layer} weights per layer, "
            f"got x {x.shape} and {len(weights)} weights"
        )
    (b, length, d), f = x.shape, weights[ENCODER_LAYER_WEIGHTS.index("up_weight")].shape[-1]
    wanted = [(d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, f), (f,), (f, d), (d,), (d,), (d,)]
    names = ENCODER_LAYER_WEIGHTS
    wrong = [
        f"layer {i // per_layer} {names[i % per_layer]} {w.shape} (not {wanted[i % per_layer]})"
        for i, w in enumerate(weights)
        if w.shape != wanted[i % per_layer]
    ]
    if mask is not None and mask.shape != (b, 1, 1, length):
        wrong.append(f"mask {mask.shape} (not {(b, 1, 1, length)})")
    if heads < 1 or d % heads:
        wrong.append(f"{heads} heads (D = {d} is no multiple)")
    if wrong:
        raise ShapeError(f"encoder_layer of x {x.shape}: {', '.join(wrong)}")
    return len(weights) // per_layer
