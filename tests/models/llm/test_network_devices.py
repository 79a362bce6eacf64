"""The llama network on every device against the cpu: a tiny random model's logits, and the shipped
model with packed GGUF weights (the cpu's logits on the cpu, its greedy tokens on wgpu)."""

from __future__ import annotations

import numpy as np
import pytest

from accelerate_lab.errors import DeviceError
from accelerate_lab.hal import cpu_gguf, get_device
from accelerate_lab.models.llm import GGUFFile, KVCache, Llama, LlamaConfig
from accelerate_lab.models.llm.network import LlamaNetwork
from accelerate_lab.models.llm.weights import Embedding, LayerWeights, LlamaWeights, Projection, load_weights
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
        LayerWeights(
            t(d, scale=1.0),
            Projection(t(d, qkv)),
            Projection(t(d, d)),
            t(d, scale=1.0),
            Projection(t(d, 2 * f)),
            Projection(t(f, d)),
        )
        for _ in range(c.num_layers)
    )
    embedding = t(c.vocab_size, d, scale=1.0)
    dev = get_device(device)
    weights = LlamaWeights(
        Embedding(dev, embedding), layers, t(d, scale=1.0), Projection(ops.transpose(embedding))
    )
    return LlamaNetwork(c, weights, dev)


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


@pytest.mark.gpu
@pytest.mark.slow
def test_smollm2_on_wgpu_with_packed_weights_gives_the_cpus_greedy_tokens(llama: Llama) -> None:
    """The shipped model on wgpu, its linear layers in GGUF blocks read by the packed kernels: a short
    prompt and three greedy steps (Mesa's CPU Vulkan needs seconds a token) give the cpu's tokens."""
    try:
        packed = Llama.from_pretrained(None, "wgpu")
    except DeviceError as error:
        pytest.skip(f"no wgpu device here: {error}")
    layer = packed.network.weights.layers[0]
    assert (layer.qkv.kernel, layer.down.kernel, packed.network.weights.output.kernel) == (
        "matmul_q4_1",
        "matmul_q4_1",
        "matmul_q8_0",
    )
    assert layer.qkv.weight.shape == (960, 90) and layer.qkv.weight.dtype == "int32"  # 18 blocks of 5 words
    prompt = llama.prompt_ids("Hi")[:4]
    ours = packed.generate(prompt, max_new_tokens=3, stop_token_ids=()).reply().token_ids
    assert ours == llama.generate(prompt, max_new_tokens=3, stop_token_ids=()).reply().token_ids
    assert not packed.network.device.stats.cpu_fallbacks


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["compiled", "numpy"])
def test_packed_weights_on_the_cpu_give_the_float_networks_logits(
    llama: Llama, gguf_file: GGUFFile, kernels: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packed loading path (joined blocks, the tied Q8_0 head, host-decoded embedding rows) run by
    the cpu's compiled kernels (its default where they build) or its numpy ones: the float32 network's
    logits within 1e-4 of their largest magnitude."""
    if kernels == "numpy":
        monkeypatch.setattr(cpu_gguf, "_native", lambda: None)
    elif not cpu_gguf.compiled():
        pytest.skip("gguf.c does not build here")
    cpu = llama.device  # the reference's own cpu device (the registry may hold a newer one)
    weights = load_weights(gguf_file, llama.config, cpu, "packed", packed=True)
    assert weights.embedding.table is None and weights.output.kernel == "matmul_q8_0"
    floats = load_weights(gguf_file, llama.config, cpu, "float", packed=False)
    assert floats.embedding.table is not None and floats.output.kernel is None
    packed, unpacked = LlamaNetwork(llama.config, weights, cpu), LlamaNetwork(llama.config, floats, cpu)
    ids = llama.prompt_ids("Hi")[:3]
    with KVCache(llama.config, 8, cpu) as ours, KVCache(llama.config, 8, cpu) as reference:
        for step in (ids, [42]):
            got = packed.forward(step, ours).numpy()
            want = unpacked.forward(step, reference).numpy()
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


@pytest.mark.slow
@pytest.mark.parametrize("compiled", [True, False])
def test_the_cpu_keeps_packed_weights_exactly_when_its_kernels_are_compiled(
    llama: Llama, gguf_file: GGUFFile, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packed blocks read by compiled code beat float32 BLAS at decoding; numpy's decoding them whole
    for every product does not."""
    monkeypatch.setattr(cpu_gguf, "compiled", lambda: compiled)
    weights = load_weights(gguf_file, llama.config, llama.device, "default")
    assert weights.layers[0].qkv.kernel == ("matmul_q4_1" if compiled else None)
    assert (weights.embedding.table is None) == compiled
