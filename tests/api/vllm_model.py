"""Writes the tiny random Llama that the vLLM server tier serves, and two LoRA adapters for it.

Run with vLLM's own python: `python vllm_model.py DIR` writes DIR/model (config, weights, a BPE tokenizer
trained here with a chat template; head dim 64, as vLLM's CPU attention needs) and DIR/lora, DIR/lora-b (two
adapters in PEFT's format: adapter_config.json + adapter_model.safetensors), seeded, offline, in seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "user: hello there, how are you today? assistant: fine, thank you, and you?",
    "SELECT name, count(*) FROM users WHERE age > 30 GROUP BY name ORDER BY 2 DESC;",
    "Accelerators run kernels; servers answer requests; adapters change a model a little.",
]
HIDDEN, LAYERS, HEADS, HEAD_DIM, RANK = 128, 2, 2, 64, 8
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def write_tokenizer(out: Path) -> int:
    """Every token is whole characters (no byte fallback), so any token sequence decodes to valid text."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        TEXT, trainers.BpeTrainer(vocab_size=256, special_tokens=["<s>", "</s>", "<unk>"])
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(out)
    return len(fast)


def write_model(out: Path, vocab: int) -> None:
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=512,
        initializer_range=0.2,
        bos_token_id=0,
        eos_token_id=1,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(out)


def write_lora(out: Path, base: Path) -> None:
    """Random A and B (PEFT starts B at zero; a trained adapter has not): it visibly changes the output."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer in range(LAYERS):
        for target in TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(RANK, HIDDEN) / HIDDEN**0.5
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(HIDDEN, RANK)
    save_file({k: v.contiguous() for k, v in tensors.items()}, out / "adapter_model.safetensors")
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base),
        "r": RANK,
        "lora_alpha": 2 * RANK,
        "lora_dropout": 0.0,
        "target_modules": list(TARGETS),
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "use_rslora": False,
    }
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2))


def main(root: Path) -> None:
    torch.manual_seed(0)
    model = root / "model"
    write_model(model, write_tokenizer(model))
    write_lora(root / "lora", model)
    write_lora(root / "lora-b", model)  # other random weights: the RNG has moved on


if __name__ == "__main__":
    main(Path(sys.argv[1]))
