"""What every model shares: reading its config, checking the architecture, taking inputs onto its device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.errors import ModelNotFoundError, WeightsCorruptError, WrongArchitectureError
from accelerate_lab.tensor import Tensor, ops, tensor
from accelerate_lab.tensor.dtypes import DTypeLike

__all__ = ["as_input", "model_name", "read_config", "read_json"]

ArrayLike = Tensor | np.ndarray | list[Any]


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


def as_input(x: ArrayLike, device: Device, dtype: DTypeLike) -> Tensor:
    """A model input (tensor, numpy array or list) as a tensor of ``dtype`` on ``device``."""
    if isinstance(x, Tensor):
        moved = x.to(device)
        return moved if moved.dtype == np.dtype(dtype).name else ops.cast(moved, dtype)
    return tensor(np.asarray(x), dtype=dtype, device=device)
