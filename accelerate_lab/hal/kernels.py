"""The kernel catalogue: every device-level operation, by name, with its inputs and parameters.

A device implements these names (`Device.run(name, inputs, params)`); the tensor ops above
``hal`` only ever call them. The cpu device implements all of them with numpy; others may
implement a subset and fall back to the cpu visibly (see ``DeviceStats.cpu_fallbacks``).

Conventions: ``axis`` parameters are already normalised to non-negative ints (a tuple for
reductions, ``None`` meaning all axes); ``index`` is a tuple of ``int | slice | None | Ellipsis``
(basic indexing); every kernel returns a new buffer except ``setitem``, which writes in place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KERNELS", "KernelSpec", "kernel_names"]


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


def kernel_names() -> list[str]:
    """All kernel names, sorted."""
    return sorted(KERNELS)
