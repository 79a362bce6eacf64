"""Loaded weights registered as shared tensors: visible per model, reused, and held to the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from accelerate_lab import MemoryBudgetExceeded, TensorSharingManager
from accelerate_lab.models import BERT


def _float_bytes(folder: Path) -> int:
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        arrays = [f.get_tensor(k) for k in f.keys()]  # noqa: SIM118 (safe_open is not a mapping)
    return sum(a.nbytes for a in arrays if a.dtype.kind == "f")


def test_weights_are_registered_under_the_model_name_with_their_bytes(tiny_bert_dir: Path) -> None:
    mgr = TensorSharingManager()
    BERT.from_pretrained(tiny_bert_dir, sharing=mgr)
    usage = mgr.get_model_memory_usage()[tiny_bert_dir.name]
    assert usage.bytes == _float_bytes(tiny_bert_dir)
    assert f"{tiny_bert_dir.name}/embeddings.word_embeddings.weight" in usage.tensors


def test_a_model_loaded_twice_into_one_manager_reuses_its_weights(tiny_bert_dir: Path) -> None:
    mgr = TensorSharingManager()
    first = BERT.from_pretrained(tiny_bert_dir, sharing=mgr)
    held = mgr.get_stats().current_bytes
    second = BERT.from_pretrained(tiny_bert_dir, sharing=mgr)
    assert mgr.get_stats().current_bytes == held
    ids = [[1, 5, 7, 9]]
    a, b = first(input_ids=ids)["last_hidden_state"], second(input_ids=ids)["last_hidden_state"]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(
        a.numpy(), BERT.from_pretrained(tiny_bert_dir)(input_ids=ids)["last_hidden_state"].numpy()
    )


def test_loading_beyond_the_budget_raises_memory_budget_exceeded(tiny_bert_dir: Path) -> None:
    mgr = TensorSharingManager(max_memory_mb=0.01)
    with pytest.raises(MemoryBudgetExceeded):
        BERT.from_pretrained(tiny_bert_dir, sharing=mgr)
