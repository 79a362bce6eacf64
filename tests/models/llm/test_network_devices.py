"""The llama network on a tiny random model: the same logits on every device (wgpu against the cpu)."""

from __future__ import annotations

import numpy as np

from accelerate_lab.hal import get_device
from accelerate_lab.models.llm import KVCache, LlamaConfig
from accelerate_lab.models.llm.network import LlamaNetwork
from accelerate_lab.models.llm.weights import LayerWeights, LlamaWeights
from accelerate_lab.tensor import Tensor, ops, tensor

CONFIG = LlamaConfig(
    vocab_size=64, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4, num_kv_heads=2,
    rope_theta=10000.0, rms_norm_eps=1e-5, context_length=32,
)  # fmt: skip


def tiny_network(device: str) -> LlamaNetwork:
    rng = np.random.default_rng(0)
    c = CONFIG
    d, f, qkv = c.hidden_size, c.intermediate_size, (c.num_heads + 2 * c.num_kv_heads) * c.head_dim

    def t(*shape: int, scale: float = 0.2) -> Tensor:
        return tensor((rng.standard_normal(shape) * scale).astype(np.float32), device=device)

    layers = tuple(
        LayerWeights(t(d, scale=1.0), t(d, qkv), t(d, d), t(d, scale=1.0), t(d, 2 * f), t(f, d))
        for _ in range(c.num_layers)
    )
    embedding = t(c.vocab_size, d, scale=1.0)
    weights = LlamaWeights(embedding, layers, t(d, scale=1.0), ops.transpose(embedding))
    return LlamaNetwork(c, weights, get_device(device))


def run(device: str) -> list[np.ndarray]:
    network = tiny_network(device)
    with KVCache(CONFIG, 16, device) as cache:
        steps = [
            network.forward([3, 14, 15, 9, 2], cache),
            network.forward([6], cache),
            network.forward([5], cache),
        ]
        return [s.numpy().copy() for s in steps]


def test_decoding_token_by_token_equals_one_pass_over_the_whole_sequence() -> None:
    network = tiny_network("cpu")
    with KVCache(CONFIG, 16, "cpu") as whole, KVCache(CONFIG, 16, "cpu") as stepwise:
        expected = network.forward([3, 14, 15, 9, 2, 6], whole).numpy()
        network.forward([3, 14, 15], stepwise)
        network.forward([9, 2], stepwise)
        np.testing.assert_allclose(network.forward([6], stepwise).numpy(), expected, rtol=1e-5, atol=1e-5)
        assert stepwise.tokens == whole.tokens == [3, 14, 15, 9, 2, 6]


def test_every_device_gives_the_cpus_logits(device: str) -> None:
    for ours, reference in zip(run(device), run("cpu"), strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
