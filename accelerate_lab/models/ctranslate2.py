"""Reading CTranslate2's ``model.bin`` (binary format version 6) without CTranslate2.

The file is a header (format version, spec name, revision), then each variable as
``name, rank, dims, dtype id, byte count, bytes``, then aliases (``name -> variable``). The
arrays are memory-mapped: nothing is read until a tensor is asked for.

>>> bin = CTranslate2File(path)  # doctest: +SKIP
>>> bin.spec, bin.get("decoder/embeddings/weight").dtype  # doctest: +SKIP
('WhisperSpec', dtype('float16'))
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from accelerate_lab.models.errors import ModelNotFoundError, WeightsCorruptError

__all__ = ["CTranslate2File"]

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_SUPPORTED_VERSIONS = (5, 6)


class _Reader:
    """Little-endian fields at a moving offset of a memory-mapped file, with bounds checks."""

    def __init__(self, data: np.memmap, path: Path) -> None:
        self.data, self.path, self.offset = data, path, 0

    def take(self, size: int) -> np.ndarray:
        end = self.offset + size
        if end > len(self.data):
            raise WeightsCorruptError(
                f"{self.path} is truncated: a field at byte {self.offset} needs {size} bytes but the file "
                f"has {len(self.data)}; reinstall or re-download the model"
            )
        out = self.data[self.offset : end]
        self.offset = end
        return out

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)).tobytes())
        return int(value)

    def string(self) -> str:
        raw = self.take(self.unpack("H")).tobytes()
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError as error:
            raise WeightsCorruptError(f"{self.path}: a name at byte {self.offset} is not UTF-8") from error


class CTranslate2File:
    """The variables of a CTranslate2 ``model.bin``, by name (aliases resolved)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"no CTranslate2 weights at {self.path}: the folder needs a model.bin")
        reader = _Reader(np.memmap(self.path, dtype=np.uint8, mode="r"), self.path)
        version = reader.unpack("I")
        if version not in _SUPPORTED_VERSIONS:
            raise WeightsCorruptError(
                f"{self.path} is not a CTranslate2 model.bin this reader knows (format version {version}, "
                f"expected one of {_SUPPORTED_VERSIONS})"
            )
        self.spec = reader.string()
        self.revision = reader.unpack("I")
        self._arrays: dict[str, np.ndarray] = {}
        for _ in range(reader.unpack("I")):
            name = reader.string()
            shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
            dtype_id = reader.unpack("B")
            if dtype_id not in _DTYPES:
                raise WeightsCorruptError(f"{self.path}: variable {name!r} has unknown dtype id {dtype_id}")
            raw = reader.take(reader.unpack("I"))
            dtype = np.dtype(_DTYPES[dtype_id])
            if raw.size != dtype.itemsize * int(np.prod(shape)):
                raise WeightsCorruptError(
                    f"{self.path}: variable {name!r} has {raw.size} bytes for shape {shape}"
                )
            self._arrays[name] = raw.view(dtype).reshape(shape)
        for _ in range(reader.unpack("I")):
            alias, target = reader.string(), reader.string()
            if target not in self._arrays:
                raise WeightsCorruptError(f"{self.path}: alias {alias!r} points to missing {target!r}")
            self._arrays[alias] = self._arrays[target]

    def names(self) -> list[str]:
        return list(self._arrays)

    def get(self, name: str) -> np.ndarray:
        """The variable as a read-only memory-mapped array."""
        return self._arrays[name]
