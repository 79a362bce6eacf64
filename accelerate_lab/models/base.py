"""What every model shares: its name, config, device and precision (`PretrainedModel`), reading its config
and opening its weights, checking the architecture, taking inputs onto its device, and running its
host-facing methods both synchronously and awaitably from one implementation.

A method whose result crosses back to the host is written once as *steps*: a generator that yields
each tensor whose data it needs and receives that data as a numpy array. `run_steps` answers with
``t.numpy()`` (the sync form, for the cpu and ``wgpu``), `run_steps_async` with
``await t.numpy_async()`` (the async form, which a notebook cell needs for ``browser:webgpu``).

>>> import accelerate_lab as al
>>> def doubled(x):
...     data = yield al.mul(x, 2)
...     return data.tolist()
>>> run_steps(doubled(al.ones([2])))
[2.0, 2.0]
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.errors import ModelNotFoundError, WeightsCorruptError, WrongArchitectureError
from accelerate_lab.models.precision import Precision
from accelerate_lab.models.weights import StateDict, Weights
from accelerate_lab.tensor import Tensor, ops, tensor
from accelerate_lab.tensor.dtypes import DTypeLike

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = [
    "PretrainedModel",
    "Steps",
    "as_input",
    "fetched",
    "float32",
    "model_name",
    "open_weights",
    "read_config",
    "read_json",
    "run_steps",
    "run_steps_async",
]

ArrayLike = Tensor | np.ndarray | list[Any]
T = TypeVar("T")
Steps: TypeAlias = Generator[Tensor, np.ndarray, T]


def model_name(folder: Path) -> str:
    """A readable name for a model folder: the package that ships it, the hub id, or the folder's name."""
    if folder.parent.name == "snapshots":  # the Hugging Face cache: models--org--name/snapshots/<revision>
        return folder.parent.parent.name.removeprefix("models--").replace("--", "/")
    return folder.parent.name if folder.name == "model" else folder.name


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, with typed errors for a missing or broken file."""
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing: the model folder needs it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WeightsCorruptError(
            f"{path} is not valid JSON ({error}); re-download or reinstall the model"
        ) from error
    if not isinstance(data, dict):
        raise WeightsCorruptError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def read_config(folder: Path, model_type: str) -> dict[str, Any]:
    """``config.json`` of ``folder``, which must describe a ``model_type`` model."""
    config = read_json(folder / "config.json")
    found = config.get("model_type")
    if found != model_type:
        raise WrongArchitectureError(
            f"{folder} holds a {found!r} model, not {model_type!r}: load it with the class for {found!r}"
        )
    return config


def open_weights(
    state: StateDict,
    name: str,
    device: str | Device,
    sharing: TensorSharingManager | None,
    dtype: str,
    prefixes: Sequence[str] = ("",),
    probe: str = "",
) -> Weights:
    """`Weights` of the model ``name`` under the first of ``prefixes`` that holds ``probe`` (checkpoints of
    a task model keep the base model under a prefix), else the last: its errors name what is missing."""
    w = Weights(state, device=device, model_name=name, sharing=sharing, precision=dtype)
    for prefix in prefixes:
        w.prefix = prefix
        if w.has(probe):
            break
    return w


class PretrainedModel:
    """What every model holds: its ``name`` and ``config``, the ``device`` it runs on, ``dtype`` (the
    precision it runs in) and ``weight_bytes`` (what its weights take on the device)."""

    def __init__(
        self, name: str, config: dict[str, Any], device: Device, dtype: Precision, weight_bytes: int
    ) -> None:
        self.name, self.config, self.device = name, config, device
        self.dtype, self.weight_bytes = dtype, weight_bytes


def as_input(x: ArrayLike, device: Device, dtype: DTypeLike) -> Tensor:
    """A model input (tensor, numpy array or list) as a tensor of ``dtype`` on ``device``."""
    if isinstance(x, Tensor):
        moved = x.to(device)
        return moved if moved.dtype == np.dtype(dtype).name else ops.cast(moved, dtype)
    return tensor(np.asarray(x), dtype=dtype, device=device)


def float32(x: Tensor) -> Tensor:
    """``x`` as float32 (itself when it is): what a model hands back, whatever precision it ran in."""
    return x if x.dtype == "float32" else ops.cast(x, "float32")


def fetched(x: Tensor) -> Steps[np.ndarray]:
    """The steps of reading one tensor's data."""
    data: np.ndarray = yield x
    return data


def run_steps(steps: Steps[T]) -> T:
    """The result of ``steps``, each tensor it yields read with ``numpy()``."""
    try:
        wanted = next(steps)
        while True:
            wanted = steps.send(wanted.numpy())
    except StopIteration as done:
        result: T = done.value
        return result


async def run_steps_async(steps: Steps[T], timeout: float | None = None) -> T:
    """The result of ``steps``, each tensor it yields awaited with ``numpy_async(timeout)``."""
    try:
        wanted = next(steps)
        while True:
            wanted = steps.send(await wanted.numpy_async(timeout))
    except StopIteration as done:
        result: T = done.value
        return result
