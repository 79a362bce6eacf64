"""Weights from files onto a device: safetensors (memory-mapped), checked names and shapes, a progress bar.

`Weights` hands a model's builder one tensor at a time: it checks the tensor exists (else the
file is for another architecture) and has the shape the config implies, converts it to float32
(float16 for a ``precision="fp16"`` model), uploads it to the device, counts its bytes, and ticks a
``tqdm`` bar. The linear layers of a ``precision="q8"`` model are quantized by their builder
(`~accelerate_lab.models.layers.Linear.fused`) before they are uploaded. On ``browser:webgpu``, a
tensor whose hash the file's `HashIndex` knows is neither read, converted nor quantized unless the
browser's weight cache lacks it (`Weights.upload_later`). With a
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
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from tqdm.auto import tqdm  # type: ignore[import-untyped]

from accelerate_lab.hal.browser_cache import HashIndex, cacheable_uploads, indexed_hashes
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.hal.cpu_pages import huge_page_copy
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
        index = HashIndex(path) if path.is_file() else None
        try:
            self._file = safe_open(str(path), framework="np")
        except SafetensorError as error:
            raise WeightsCorruptError(
                f"{path} is not a complete safetensors file ({error}); re-download or reinstall the model"
            ) from error
        # and checked after: the index must describe the file that was opened
        self.hashes = index if index is not None and index.unchanged() else None
        self._names: list[str] = list(self._file.keys())  # type: ignore[no-untyped-call]

    def names(self) -> list[str]:
        return self._names

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of ``name``, from the file's header (its data is not read)."""
        return tuple(int(d) for d in self._file.get_slice(name).get_shape())  # type: ignore[no-untyped-call]

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
        return self.reader(name, shape)()

    def reader(self, name: str, shape: Sequence[int]) -> Callable[[], np.ndarray]:
        """Check that the tensor ``name`` exists and has ``shape`` (from a safetensors header: its data
        is not read), count it as loaded, and return what reads it as a float32 array."""
        full = self.prefix + name
        if full not in self._available:
            close = difflib.get_close_matches(full, self._available, n=3)
            hint = f"; similar names: {', '.join(close)}" if close else ""
            raise WrongArchitectureError(
                f"the weights of {self.model_name!r} have no tensor {full!r}{hint}: is this checkpoint for "
                "another architecture? Load it with the matching class"
            )
        read: Callable[[], np.ndarray]
        if isinstance(self.state, SafetensorsFile):
            file = self.state
            found, read = file.shape(full), lambda: file.get(full)
        else:
            array = self.state.get(full)
            found, read = array.shape, lambda: array
        expected = tuple(int(d) for d in shape)
        if found != expected:
            raise WeightsShapeError(
                f"tensor {full!r} of {self.model_name!r} has shape {found}, but config.json implies "
                f"{expected}: the config and the weights file do not belong together"
            )
        self._bar.update(1)
        for callback in _listeners.callbacks:
            callback(self.model_name, int(self._bar.n), len(self._available))
        return lambda: np.ascontiguousarray(read(), dtype=np.float32)

    def upload(self, array: np.ndarray, name: str) -> Tensor:
        """An array (already checked) as the tensor ``name`` on the device, shared when there is a manager.

        Float arrays take the precision's float dtype; ``nbytes`` counts what the device holds. Weights
        are cacheable uploads: ``browser:webgpu`` keeps them in the browser across sessions, and their
        content hashes in the weights file's `HashIndex`.
        """
        array = self._converted(array)
        return self._upload_from(name, lambda: array, (array.dtype.str, array.shape))

    def upload_later(self, name: str, make: Callable[[], np.ndarray]) -> Tensor:
        """`upload` of the array ``make()`` returns. On a device that keeps weights across sessions, where
        the weights file's `HashIndex` knows this upload (its hash, dtype and shape), ``make`` runs only
        if the device asks for the bytes (its cache lacks them), and only while the file is unchanged."""
        return self._upload_from(name, make, None)

    def _upload_from(
        self, name: str, make: Callable[[], np.ndarray], known: tuple[str, tuple[int, ...]] | None
    ) -> Tensor:
        """`upload_later`; ``known``: the dtype and shape of the array, where it is at hand (an index entry
        of another dtype or shape is of another upload)."""
        index, key = self._hash_index, self._key(name)
        entry = index.get(key) if index is not None and self._defers else None
        if entry is not None and known is not None and (entry.dtype, entry.shape) != known:
            entry = None
        if index is None or entry is None:
            array = self._converted(make())
            hashes = nullcontext() if index is None else indexed_hashes(index, key)
            with cacheable_uploads(), hashes:
                return self._upload(name, array.nbytes, lambda: self._placed(array))
        device = self.device
        assert isinstance(device, BrowserProxyDevice)

        def made() -> np.ndarray:
            if not index.unchanged():
                raise WeightsCorruptError(f"{index.source} changed while its weights were being loaded")
            return self._converted(make())

        def place() -> Tensor:
            dtype = np.dtype(entry.dtype)
            return Tensor._wrap(device.upload_deferred(entry.shape, dtype, entry.digest, made), device)

        return self._upload(name, entry.nbytes, place)

    def _placed(self, array: np.ndarray) -> Tensor:
        """A copy of ``array`` on the device; on the cpu in 2 MiB pages where large (every forward pass
        reads every weight: `~accelerate_lab.hal.cpu_pages`)."""
        if self.device.name == "cpu":
            return Tensor._wrap(huge_page_copy(array), self.device)
        return tensor(array, device=self.device)

    @property
    def _defers(self) -> bool:
        """Whether uploads may be deferred: the device keeps weights across sessions."""
        return isinstance(self.device, BrowserProxyDevice) and self.device.caches_weights

    def _converted(self, array: np.ndarray) -> np.ndarray:
        """Float arrays in the precision's float dtype."""
        return array.astype(float_dtype(self.precision), copy=False) if array.dtype.kind == "f" else array

    def _key(self, name: str) -> str:
        """The index key of this load's ``n``-th upload named ``name``."""
        self._uploads[name] += 1
        return f"{name}#{self._uploads[name]}:{self.precision}"

    def _upload(self, name: str, nbytes: int, place: Callable[[], Tensor]) -> Tensor:
        self.nbytes += nbytes
        if self.sharing is None:
            return place()
        key = f"{self.model_name}/{name}"
        if self.precision != "fp32":
            key = f"{key}:{self.precision}"
        if self.device.name != "cpu":
            key = f"{key}@{self.device.name}"
        if key in self.sharing:
            return self.sharing.get_shared_tensor(key, self.model_name).data
        shared = self.sharing.register_shared_tensor(
            key, storage_type=self.device.name, producer_model=self.model_name, data=place()
        )
        return shared.data

    def tensor(self, name: str, shape: Sequence[int]) -> Tensor:
        """The tensor ``name`` with ``shape``, on the device."""
        return self.upload_later(self.prefix + name, self.reader(name, shape))

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
