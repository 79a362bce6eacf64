"""Weights from files onto a device: safetensors (memory-mapped), checked names and shapes, a progress bar.

`Weights` hands a model's builder one tensor at a time: it checks the tensor exists (else the
file is for another architecture) and has the shape the config implies, converts it to float32
(float16 for a ``precision="fp16"`` model), uploads it to the device, counts its bytes, and ticks a
``tqdm`` bar. The linear layers of a ``precision="q8"`` model are quantized by their builder
(`~accelerate_lab.models.layers.Linear.fused`) before they are uploaded. With a
`TensorSharingManager`, every weight is registered as ``"<model name>/<tensor name>"`` (plus
``":fp16"`` or ``":q8"``) with the model as producer (so memory dashboards and budgets see it),
and a model loaded twice into one manager reuses the first copy.

>>> w = Weights(open_safetensors("model.safetensors"), device="cpu", model_name="bert")  # doctest: +SKIP
>>> w.tensor("embeddings.word_embeddings.weight", (30522, 384)).shape  # doctest: +SKIP
(30522, 384)
"""

from __future__ import annotations

import difflib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from tqdm.auto import tqdm  # type: ignore[import-untyped]

from accelerate_lab.hal.browser_cache import HashIndex, cacheable_uploads, indexed_hashes
from accelerate_lab.hal.device import Device
from accelerate_lab.hal.registry import get_device
from accelerate_lab.models.errors import (
    ModelNotFoundError,
    WeightsCorruptError,
    WeightsShapeError,
    WrongArchitectureError,
)
from accelerate_lab.models.precision import Precision, check_precision, float_dtype
from accelerate_lab.tensor import Tensor, tensor

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

ProgressCallback = Callable[[str, int, int], None]


class _Listeners(threading.local):
    callbacks: tuple[ProgressCallback, ...] = ()


_listeners = _Listeners()


@contextmanager
def loading_progress(callback: ProgressCallback) -> Iterator[None]:
    """Call ``callback(model_name, done, total)`` for every tensor loaded in this thread inside the block
    (the numbers the ``tqdm`` bar shows; a widget's progress bar reads them here).

    >>> seen = []
    >>> with loading_progress(lambda name, done, total: seen.append((name, done, total))):
    ...     pass
    >>> seen
    []
    """
    previous = _listeners.callbacks
    _listeners.callbacks = (*previous, callback)
    try:
        yield
    finally:
        _listeners.callbacks = previous


__all__ = ["SafetensorsFile", "StateDict", "Weights", "open_safetensors"]


class StateDict(Protocol):
    """Named arrays in a weights file (safetensors, CTranslate2, or an adapter over one)."""

    def names(self) -> list[str]: ...

    def get(self, name: str) -> np.ndarray: ...


class SafetensorsFile:
    """A memory-mapped ``.safetensors`` file."""

    def __init__(self, path: Path) -> None:
        from safetensors import SafetensorError, safe_open

        self.path = path
        # made before opening: a file replaced meanwhile stores no hashes
        self.hashes = HashIndex(path) if path.is_file() else None
        try:
            self._file = safe_open(str(path), framework="np")
        except SafetensorError as error:
            raise WeightsCorruptError(
                f"{path} is not a complete safetensors file ({error}); re-download or reinstall the model"
            ) from error
        self._names: list[str] = list(self._file.keys())  # type: ignore[no-untyped-call]

    def names(self) -> list[str]:
        return self._names

    def get(self, name: str) -> np.ndarray:
        array: np.ndarray = self._file.get_tensor(name)  # type: ignore[no-untyped-call]
        return array


def open_safetensors(path: str | Path) -> SafetensorsFile:
    """Open ``path`` (a file, or a folder holding ``model.safetensors``)."""
    file = Path(path)
    if file.is_dir():
        file = file / "model.safetensors"
    if not file.is_file():
        raise ModelNotFoundError(f"no weights at {file}: the folder needs a model.safetensors")
    return SafetensorsFile(file)


class Weights:
    """Tensors taken from a `StateDict` onto a device, each checked, converted and counted."""

    def __init__(
        self,
        state: StateDict,
        *,
        device: str | Device,
        model_name: str,
        prefix: str = "",
        sharing: TensorSharingManager | None = None,
        precision: str = "fp32",
    ) -> None:
        self.state = state
        self.device = get_device(device)
        self.precision: Precision = check_precision(precision, self.device)
        self.nbytes = 0
        self.model_name = model_name
        self.prefix = prefix
        self.sharing = sharing
        self._available = set(state.names())
        self._hash_index = state.hashes if isinstance(state, SafetensorsFile) else None
        self._uploads: Counter[str] = Counter()
        self._bar = tqdm(total=len(self._available), desc=f"loading {model_name}", unit="tensor", leave=False)

    def has(self, name: str) -> bool:
        return self.prefix + name in self._available

    def array(self, name: str, shape: Sequence[int]) -> np.ndarray:
        """The float32 array ``name``, which must have ``shape``."""
        full = self.prefix + name
        if full not in self._available:
            close = difflib.get_close_matches(full, self._available, n=3)
            hint = f"; similar names: {', '.join(close)}" if close else ""
            raise WrongArchitectureError(
                f"the weights of {self.model_name!r} have no tensor {full!r}{hint}: is this checkpoint for "
                "another architecture? Load it with the matching class"
            )
        array = self.state.get(full)
        expected = tuple(int(d) for d in shape)
        if array.shape != expected:
            raise WeightsShapeError(
                f"tensor {full!r} of {self.model_name!r} has shape {array.shape}, but config.json implies "
                f"{expected}: the config and the weights file do not belong together"
            )
        self._bar.update(1)
        for callback in _listeners.callbacks:
            callback(self.model_name, int(self._bar.n), len(self._available))
        return np.ascontiguousarray(array, dtype=np.float32)

    def upload(self, array: np.ndarray, name: str) -> Tensor:
        """An array (already checked) as the tensor ``name`` on the device, shared when there is a manager.

        Float arrays take the precision's float dtype; ``nbytes`` counts what the device holds. Weights
        are cacheable uploads: ``browser:webgpu`` keeps them in the browser across sessions, and their
        content hashes in the weights file's `HashIndex`.
        """
        if array.dtype.kind == "f":
            array = array.astype(float_dtype(self.precision), copy=False)
        with cacheable_uploads(), self._indexed(array, name):
            return self._upload(array, name)

    def _indexed(self, array: np.ndarray, name: str) -> AbstractContextManager[None]:
        """Hashes from the file's index, for the ``n``-th upload named ``name`` with this dtype and shape."""
        if self._hash_index is None:
            return nullcontext()
        self._uploads[name] += 1
        key = f"{name}#{self._uploads[name]}:{self.precision}:{array.dtype.str}:{array.shape}"
        return indexed_hashes(self._hash_index, key)

    def _upload(self, array: np.ndarray, name: str) -> Tensor:
        self.nbytes += array.nbytes
        if self.sharing is None:
            return tensor(array, device=self.device)
        key = f"{self.model_name}/{name}"
        if self.precision != "fp32":
            key = f"{key}:{self.precision}"
        if self.device.name != "cpu":
            key = f"{key}@{self.device.name}"
        if key in self.sharing:
            return self.sharing.get_shared_tensor(key, self.model_name).data
        shared = self.sharing.register_shared_tensor(
            key,
            storage_type=self.device.name,
            producer_model=self.model_name,
            data=tensor(array, device=self.device),
        )
        return shared.data

    def tensor(self, name: str, shape: Sequence[int]) -> Tensor:
        """The tensor ``name`` with ``shape``, on the device."""
        return self.upload(self.array(name, shape), self.prefix + name)

    def optional(self, name: str, shape: Sequence[int]) -> Tensor | None:
        """The tensor ``name`` when the file has it, else ``None``."""
        return self.tensor(name, shape) if self.has(name) else None

    def close(self) -> None:
        self._bar.close()
        if self._hash_index is not None:
            self._hash_index.save()
        total = len(self._available)  # loading is over: tensors the architecture does not read count as done
        for callback in _listeners.callbacks:
            callback(self.model_name, total, total)

    def __enter__(self) -> Weights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
