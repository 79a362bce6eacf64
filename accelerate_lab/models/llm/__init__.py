"""A local language model on accelerate_lab's ops: llama-architecture GGUF models (SmolLM2 ships offline).

Reads the GGUF file (its Q4_1/Q8_0 blocks kept packed for the ``matmul_q4_1``/``matmul_q8_0``
kernels, compiled C on the cpu; float32 there when that does not build), its tokenizer and chat
template, and runs
RMSNorm, rotary embeddings, grouped-query attention with a bounded KV cache and SwiGLU as tensor ops
on any device; replies are sampled (greedy, temperature, top-k, top-p, seed, stop strings) and
streamed as text. On ``browser:webgpu`` the whole network runs in the notebook's browser, and the
async forms (``async for piece in llm.stream_chat(...)``, ``chat_async``) stream its tokens, one
token id downloaded a step when greedy.

>>> from accelerate_lab.models.llm import Llama
>>> llm = Llama.from_pretrained()                              # doctest: +SKIP
>>> llm.chat("What is the capital of France?").text           # doctest: +SKIP
'The capital of France is Paris.'
"""

from accelerate_lab.models.llm.chat_template import ChatTemplate
from accelerate_lab.models.llm.config import LlamaConfig
from accelerate_lab.models.llm.errors import (
    ChatTemplateError,
    ContextLengthExceeded,
    SamplingError,
    UnsupportedQuantization,
)
from accelerate_lab.models.llm.generation import Generation, GenerationStats, Reply
from accelerate_lab.models.llm.gguf_file import GGUFFile, GGUFTensor, resolve_gguf
from accelerate_lab.models.llm.kv_cache import KVCache
from accelerate_lab.models.llm.model import Llama
from accelerate_lab.models.llm.quant import dequantize
from accelerate_lab.models.llm.sampling import Sampler, SamplingParams
from accelerate_lab.models.llm.session import ChatSession
from accelerate_lab.models.llm.tokenizer import Tokenizer

__all__ = [
    "ChatSession",
    "ChatTemplate",
    "ChatTemplateError",
    "ContextLengthExceeded",
    "GGUFFile",
    "GGUFTensor",
    "Generation",
    "GenerationStats",
    "KVCache",
    "Llama",
    "LlamaConfig",
    "Reply",
    "Sampler",
    "SamplingError",
    "SamplingParams",
    "Tokenizer",
    "UnsupportedQuantization",
    "dequantize",
    "resolve_gguf",
]
