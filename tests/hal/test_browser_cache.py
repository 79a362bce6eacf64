"""Content hashes of weights (hal/browser_cache.py): the on-disk `HashIndex` that spares a cached load the
hashing and reading, kept while the weights file, its config and the code are unchanged, and rebuilt when
corrupt."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from accelerate_lab.hal.browser_cache import HashIndex, Indexed, content_hash, indexed_hashes

rng = np.random.default_rng(5)
KEY = "encoder.weight#1:fp32"


@pytest.fixture
def weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights file (random bytes) beside a config.json, with the cache folder under ``tmp_path``."""
    monkeypatch.setenv("ACCELERATE_LAB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 4}')
    file = folder / "model.safetensors"
    file.write_bytes(rng.bytes(256))
    backdate(folder / "config.json", file)
    return file


def backdate(*files: Path) -> None:
    """Files last changed a minute ago (hashes of files changed within two seconds are not kept)."""
    for file in files:
        os.utime(file, ns=(time.time_ns() - 60 * 10**9,) * 2)


def digest() -> Indexed:
    """A made-up entry: a random hash of a (4, 4) float32 array."""
    return Indexed(hashlib.sha256(rng.bytes(16)).hexdigest(), "<f4", (4, 4))


def stored(file: Path, key: str = KEY) -> Indexed | None:
    """What a new kernel (a new index on ``file``) finds for ``key``."""
    return HashIndex(file).get(key)


def test_hashes_survive_a_restart_and_are_written_atomically(weights_file: Path) -> None:
    index = HashIndex(weights_file)
    assert index.get(KEY) is None
    value = digest()
    index.put(KEY, value)
    assert stored(weights_file) is None  # nothing on disk before save
    index.save()
    assert stored(weights_file) == value
    assert stored(weights_file, KEY.replace("#1", "#2")) is None
    assert [p.name for p in index.path.parent.iterdir()] == [index.path.name]  # no temporary left
    assert stored(weights_file.parent / "." / weights_file.name) == value  # same absolute path


@pytest.mark.parametrize("change", ["content", "mtime", "config", "path"])
def test_any_change_to_what_the_bytes_depend_on_makes_the_hashes_stale(
    weights_file: Path, change: str
) -> None:
    index = HashIndex(weights_file)
    index.put(KEY, digest())
    index.save()
    stat = weights_file.stat()
    if change == "content":
        weights_file.write_bytes(rng.bytes(300))
        backdate(weights_file)
    elif change == "mtime":  # same size, same bytes, touched
        os.utime(weights_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    elif change == "config":
        (weights_file.parent / "config.json").write_text('{"hidden_size": 8}')
        backdate(weights_file.parent / "config.json")
    else:
        moved = weights_file.with_name("other.safetensors")
        weights_file.rename(moved)
        weights_file = moved
    assert stored(weights_file) is None


def test_a_file_changed_while_loading_stores_no_hashes(weights_file: Path) -> None:
    index = HashIndex(weights_file)  # made when the file is opened
    weights_file.write_bytes(rng.bytes(256))  # replaced before its tensors were read
    backdate(weights_file)
    index.put(KEY, digest())
    index.save()
    assert not index.path.exists()
    assert stored(weights_file) is None


@pytest.mark.parametrize("recent", ["weights", "config"])
def test_a_file_changed_in_the_last_seconds_stores_no_hashes(weights_file: Path, recent: str) -> None:
    # a change in the same timestamp tick as the one before would keep size and mtime: too racy to trust
    os.utime(weights_file if recent == "weights" else weights_file.parent / "config.json")
    index = HashIndex(weights_file)
    index.put(KEY, digest())
    index.save()
    assert stored(weights_file) is None


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", '{"identity": 3}', "\x00\xff", "IDENTITY_WITH_BAD_HASHES"],
    ids=["truncated", "list", "bad-identity", "binary", "bad-hashes"],
)
def test_a_corrupt_index_is_ignored_and_rebuilt(weights_file: Path, text: str) -> None:
    index = HashIndex(weights_file)
    if text == "IDENTITY_WITH_BAD_HASHES":
        bad = [["abc", "<f4", [4]], 7, ["a" * 64, "not a dtype", [4]], ["a" * 64, "<f4", [-1]], ["a" * 64]]
        text = json.dumps({"identity": index.identity, "entries": {f"k{i}": e for i, e in enumerate(bad)}})
    index.path.parent.mkdir(parents=True)
    index.path.write_text(text)
    assert index.get(KEY) is None and all(index.get(f"k{i}") is None for i in range(5))
    value = digest()
    index.put(KEY, value)
    index.save()
    assert stored(weights_file) == value


def test_content_hash_takes_the_indexed_hash_and_records_a_computed_one(weights_file: Path) -> None:
    array = rng.standard_normal((4, 4)).astype(np.float32)
    data = array.data.cast("B")
    index = HashIndex(weights_file)
    with indexed_hashes(index, KEY):
        assert content_hash(array, data) == hashlib.sha256(data).hexdigest()
    assert index.get(KEY) == Indexed(hashlib.sha256(data).hexdigest(), "<f4", (4, 4))
    index.save()
    # a new kernel: a new array object, and the index's hash is used as is, not computed again
    marker = digest()
    later = HashIndex(weights_file)
    later.put(KEY, marker)
    copy = array.copy()
    with indexed_hashes(later, KEY):
        assert content_hash(copy, copy.data.cast("B")) == marker.digest
    # but not for an array of another dtype or shape: that entry is of another upload
    for other in (array.reshape(2, 8).copy(), array.astype(np.float16)):
        with indexed_hashes(later, KEY):
            assert content_hash(other, other.data.cast("B")) == hashlib.sha256(other.data).hexdigest()
    other = array + 1  # outside the block nothing is indexed
    assert content_hash(other, other.data.cast("B")) == hashlib.sha256(other.data).hexdigest()


def test_unchanged_tells_whether_the_file_is_the_one_indexed(weights_file: Path) -> None:
    index = HashIndex(weights_file)
    assert index.unchanged()
    weights_file.write_bytes(rng.bytes(256))  # same size, new bytes, new mtime
    assert not index.unchanged()
    weights_file.unlink()
    assert not index.unchanged()
