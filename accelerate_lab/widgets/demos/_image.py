"""What the image demos share: the picture (from Python, or a file chosen in the widget), shown as a
thumbnail, and the predictions drawn as bars."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import traitlets
from PIL import Image, UnidentifiedImageError

from accelerate_lab.models.errors import InputDecodeError
from accelerate_lab.models.images import ImageLike, load_image
from accelerate_lab.widgets.demos._base import M, ModelDemo, Task

__all__ = ["ImageDemo", "decode_image"]

_THUMBNAIL = (448, 448)


def decode_image(data: bytes, name: str) -> Image.Image:
    """The picture in an uploaded file's bytes (any format Pillow reads)."""
    try:
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except (UnidentifiedImageError, OSError) as error:
        raise InputDecodeError(f"{name} is not an image Pillow can decode ({error})") from error
    return picture


class ImageDemo(ModelDemo[M]):
    """A model demo whose input is one picture and whose output is labels with probabilities."""

    image = traitlets.Bytes(b"").tag(sync=True)
    image_name = traitlets.Unicode("").tag(sync=True)
    predictions = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._picture: Image.Image | None = None

    def _take(self, image: ImageLike | None, name: str = "") -> Image.Image:
        """``image`` as RGB (None: the last one), with its thumbnail sent to the widget."""
        if image is None:
            if self._picture is None:
                raise ValueError("no image yet: pass one (a path, a PIL image or an (H, W, 3) uint8 array)")
            return self._picture
        picture = load_image(image)
        thumbnail = picture.copy()
        thumbnail.thumbnail(_THUMBNAIL)
        png = io.BytesIO()
        thumbnail.save(png, format="PNG")
        self._picture = picture
        self.image, self.image_name = png.getvalue(), name or _describe(image, picture)
        return picture

    def _show(self, ranked: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
        self.predictions = [{"label": label, "probability": p} for label, p in ranked]
        return list(ranked)

    def _image_task(self, image: Image.Image | None, name: str, content: dict[str, Any]) -> Task[M, Any]:
        """The task running this demo's model on ``image`` (None: the last one); each demo defines it
        (an abstract method: traitlets' metaclass rules out `abc.abstractmethod` here)."""
        raise NotImplementedError(f"{type(self).__name__} must define _image_task")

    def _on_action(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        kind = content.get("kind")
        if kind == "image":
            name = str(content.get("name", "the file"))
            if not buffers:
                raise ValueError(f"{name} arrived without its bytes")
            self._start(self._image_task(decode_image(buffers[0], name), name, content))
        elif kind == "classify":
            self._start(self._image_task(None, "", content))
        else:
            super()._on_action(content, buffers)


def _describe(image: ImageLike, picture: Image.Image) -> str:
    if isinstance(image, (str, os.PathLike)):
        return Path(image).name
    return f"{type(image).__name__} {picture.width}x{picture.height}"
