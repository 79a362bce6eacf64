"""Images to model inputs with Pillow, as a model's ``preprocessor_config.json`` says.

Resize (to a fixed size, or the shortest edge to a length), centre crop, scale to ``[0, 1]``,
normalise by mean and std, channels first: what transformers' image processors do, step for step.

>>> import numpy as np
>>> prep = ImagePreprocessor(size=(4, 4), resample=2, crop=None, mean=(0.5,) * 3, std=(0.5,) * 3)
>>> prep([np.zeros((8, 8, 3), np.uint8)]).shape
(1, 3, 4, 4)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from accelerate_lab.models.base import read_json
from accelerate_lab.models.errors import InputDecodeError, ModelNotFoundError

__all__ = ["ImageLike", "ImagePreprocessor", "load_image"]

ImageLike = str | os.PathLike[str] | Image.Image | np.ndarray


def load_image(image: ImageLike) -> Image.Image:
    """An RGB Pillow image from a path, a Pillow image, or an ``(H, W, 3)`` uint8 array."""
    if isinstance(image, Image.Image):
        picture = image
    elif isinstance(image, np.ndarray):
        picture = Image.fromarray(image)
    else:
        path = Path(image)
        if not path.is_file():
            raise ModelNotFoundError(f"no image file at {path}")
        try:
            picture = Image.open(path)
            picture.load()
        except (UnidentifiedImageError, OSError) as error:
            raise InputDecodeError(f"{path} is not an image Pillow can decode ({error})") from error
    return picture.convert("RGB")


def _size(value: Any) -> int | tuple[int, int] | None:
    """transformers' ``size``/``crop_size``: an int, ``{"shortest_edge"}`` or ``{"height", "width"}``."""
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if "shortest_edge" in value:
        return int(value["shortest_edge"])
    return (int(value["height"]), int(value["width"]))


@dataclass(frozen=True)
class ImagePreprocessor:
    """Resize (``(h, w)``, or an int for the shortest edge), crop, rescale, normalise."""

    size: int | tuple[int, int] | None
    resample: int
    crop: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale: float = 1 / 255

    @classmethod
    def from_pretrained(cls, folder: Path) -> ImagePreprocessor:
        """The settings of ``folder/preprocessor_config.json``."""
        c = read_json(folder / "preprocessor_config.json")
        crop = _size(c.get("crop_size")) if c.get("do_center_crop") else None
        return cls(
            size=_size(c.get("size")) if c.get("do_resize", True) else None,
            resample=int(c.get("resample", 2)),
            crop=crop if isinstance(crop, tuple) else None,
            mean=tuple(c.get("image_mean", (0.5, 0.5, 0.5))) if c.get("do_normalize", True) else (0.0,) * 3,
            std=tuple(c.get("image_std", (0.5, 0.5, 0.5))) if c.get("do_normalize", True) else (1.0,) * 3,
            rescale=float(c.get("rescale_factor", 1 / 255)) if c.get("do_rescale", True) else 1.0,
        )

    def _resize(self, image: Image.Image) -> Image.Image:
        if self.size is None:
            return image
        if isinstance(self.size, tuple):
            height, width = self.size
        else:
            short, long = sorted((image.height, image.width))
            long = int(self.size * long / short)
            height, width = (self.size, long) if image.height <= image.width else (long, self.size)
        return image.resize((width, height), resample=Image.Resampling(self.resample), reducing_gap=None)

    def _crop(self, array: np.ndarray) -> np.ndarray:
        if self.crop is None:
            return array
        height, width = self.crop
        top, left = (array.shape[0] - height) // 2, (array.shape[1] - width) // 2
        return array[top : top + height, left : left + width]

    def __call__(self, images: Sequence[ImageLike]) -> np.ndarray:
        """``(B, 3, H, W)`` float32 pixel values."""
        if not images:
            raise ValueError("no images to preprocess: pass at least one")
        mean, std = np.array(self.mean)[:, None, None], np.array(self.std)[:, None, None]
        out = []
        for image in images:
            pixels = self._crop(np.asarray(self._resize(load_image(image)))).transpose(2, 0, 1)
            out.append((pixels * self.rescale - mean) / std)
        return np.stack(out).astype(np.float32)
