"""`LlamaConfig`: the llama architecture's sizes, read from a GGUF file's metadata."""

from __future__ import annotations

from dataclasses import dataclass

from accelerate_lab.models.errors import WrongArchitectureError
from accelerate_lab.models.llm.gguf_file import GGUFFile

__all__ = ["LlamaConfig"]


@dataclass(frozen=True)
class LlamaConfig:
    """Sizes of a llama model: RMSNorm, rotary positions, grouped-query attention, SwiGLU.

    >>> c = LlamaConfig(vocab_size=10, hidden_size=8, intermediate_size=16, num_layers=1, num_heads=2,
    ...                 num_kv_heads=1, rope_theta=10000.0, rms_norm_eps=1e-5, context_length=32)
    >>> c.head_dim, c.group_size
    (4, 2)
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    rope_theta: float
    rms_norm_eps: float
    context_length: int

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise WrongArchitectureError(
                f"hidden size {self.hidden_size}, {self.num_heads} heads and {self.num_kv_heads} key/value "
                "heads do not divide evenly: this is not a llama model this package can run"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (grouped-query attention)."""
        return self.num_heads // self.num_kv_heads

    @classmethod
    def from_gguf(cls, file: GGUFFile) -> LlamaConfig:
        """The config of a ``llama`` GGUF file; `WrongArchitectureError` for other architectures."""
        arch = file.architecture
        if arch != "llama":
            raise WrongArchitectureError(
                f"{file.path.name} holds a {arch!r} model; only 'llama' models (SmolLM2, Llama, TinyLlama, "
                "...) run here"
            )
        heads = file.get_int("llama.attention.head_count")
        hidden = file.get_int("llama.embedding_length")
        rope_dims = file.get_int("llama.rope.dimension_count", hidden // heads)
        if rope_dims != hidden // heads:
            raise WrongArchitectureError(
                f"{file.path.name} rotates {rope_dims} of {hidden // heads} head dimensions; only full-head "
                "rotary embeddings are supported"
            )
        scaling = file.get_str("llama.rope.scaling.type", "none")
        if scaling != "none":
            raise WrongArchitectureError(
                f"{file.path.name} uses {scaling!r} rotary scaling, which is not supported"
            )
        return cls(
            vocab_size=len(file.get_strings("tokenizer.ggml.tokens")),
            hidden_size=hidden,
            intermediate_size=file.get_int("llama.feed_forward_length"),
            num_layers=file.get_int("llama.block_count"),
            num_heads=heads,
            num_kv_heads=file.get_int("llama.attention.head_count_kv", heads),
            rope_theta=file.get_float("llama.rope.freq_base", 10000.0),
            rms_norm_eps=file.get_float("llama.attention.layer_norm_rms_epsilon"),
            context_length=file.get_int("llama.context_length"),
        )
