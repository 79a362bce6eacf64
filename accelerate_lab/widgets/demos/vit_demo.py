"""``VitDemo``: an image in, the classifier's five most likely labels out, as bars.

>>> from accelerate_lab.widgets import VitDemo
>>> demo = VitDemo("google/vit-base-patch16-224")  # any ViTForImageClassification folder  # doctest: +SKIP
>>> demo.classify("cat.jpg")[0]                                                           # doctest: +SKIP
('tabby, tabby cat', 0.93)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from accelerate_lab.models import ViT
from accelerate_lab.models.images import ImageLike
from accelerate_lab.widgets.demos._base import Source, Task, seconds_text
from accelerate_lab.widgets.demos._image import ImageDemo

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["VitDemo"]


class VitDemo(ImageDemo[ViT]):
    """A ViT classifier on one image: ``top_k`` labels with their probabilities.

    ``source``: a ``ViTForImageClassification`` folder, package or hub id (no ViT weights ship), or a
    loaded ``model``; ``device``, ``sharing`` and ``dtype`` as for `BertDemo`.
    """

    def __init__(
        self,
        source: Source | None = None,
        *,
        model: ViT | None = None,
        device: str = "cpu",
        sharing: TensorSharingManager | None = None,
        dtype: str = "fp32",
        top_k: int = 5,
        timeout: float = 600.0,
    ) -> None:
        self.top_k = top_k
        super().__init__(
            ViT.from_pretrained,
            source,
            model,
            device=device,
            sharing=sharing,
            dtype=dtype,
            timeout=timeout,
            kind="vit",
            title="ViT · image classification",
        )

    def classify(self, image: ImageLike | None = None) -> list[tuple[str, float]]:
        """The ``top_k`` labels of ``image`` (None: the last image), most likely first."""
        return self._call(self._task(image), "classify")

    async def classify_async(self, image: ImageLike | None = None) -> list[tuple[str, float]]:
        """`classify`, awaited: works on every device, ``browser:webgpu`` included."""
        return await self._call_async(self._task(image))

    def _task(self, image: ImageLike | None, name: str = "") -> Task[ViT, list[tuple[str, float]]]:
        picture, top_k = self._take(image, name), self.top_k

        async def run_async(model: ViT) -> list[tuple[str, float]]:
            return self._show(await model.classify_async(picture, top_k, timeout=self.timeout))

        return Task(
            "classify 1 image",
            lambda model: self._show(model.classify(picture, top_k)),
            run_async,
            lambda ranked, seconds: f"{ranked[0][0]} ({ranked[0][1]:.0%}) in {seconds_text(seconds)}",
        )

    def _image_task(
        self, image: Image.Image | None, name: str, content: dict[str, Any]
    ) -> Task[ViT, list[tuple[str, float]]]:
        return self._task(image, name)
