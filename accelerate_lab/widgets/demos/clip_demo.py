"""``ClipDemo``: an image and some labels in, CLIP's zero-shot probability of each label out, as bars.

>>> from accelerate_lab.widgets import ClipDemo
>>> demo = ClipDemo("openai/clip-vit-base-patch32")     # any CLIPModel folder  # doctest: +SKIP
>>> demo.classify("cat.jpg", ["a cat", "a dog"])         # doctest: +SKIP
[('a cat', 0.99), ('a dog', 0.01)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import traitlets
from PIL import Image

from accelerate_lab.models import CLIP
from accelerate_lab.models.images import ImageLike
from accelerate_lab.widgets.demos._base import Source, Task, seconds_text
from accelerate_lab.widgets.demos._image import ImageDemo

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["ClipDemo"]

LABELS = ("cat", "dog", "car", "tree", "diagram")


class ClipDemo(ImageDemo[CLIP]):
    """CLIP zero-shot classification: each label is put into ``template`` and compared with the image.

    ``source``: a ``CLIPModel`` folder, package or hub id (no CLIP weights ship), or a loaded ``model``;
    ``device``, ``sharing`` and ``dtype`` as for `BertDemo`; ``labels`` and ``template`` fill the boxes.
    """

    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    template = traitlets.Unicode("a photo of a {}.").tag(sync=True)

    def __init__(
        self,
        source: Source | None = None,
        *,
        model: CLIP | None = None,
        device: str = "cpu",
        sharing: TensorSharingManager | None = None,
        dtype: str = "fp32",
        labels: Sequence[str] = LABELS,
        template: str = "a photo of a {}.",
        timeout: float = 600.0,
    ) -> None:
        super().__init__(
            CLIP.from_pretrained,
            source,
            model,
            device=device,
            sharing=sharing,
            dtype=dtype,
            timeout=timeout,
            kind="clip",
            title="CLIP · zero-shot classification",
            labels=list(labels),
            template=template,
        )

    def classify(
        self, image: ImageLike | None = None, labels: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Each label's probability for ``image`` (None: the last image and the boxes' labels)."""
        return self._call(self._task(image, labels), "classify")

    async def classify_async(
        self, image: ImageLike | None = None, labels: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """`classify`, awaited: works on every device, ``browser:webgpu`` included."""
        return await self._call_async(self._task(image, labels))

    def _task(
        self, image: ImageLike | None, labels: Sequence[str] | None, name: str = ""
    ) -> Task[CLIP, list[tuple[str, float]]]:
        names = [s.strip() for s in (self.labels if labels is None else labels) if s.strip()]
        if len(names) < 2:
            raise ValueError(f"zero-shot classification needs at least two labels, got {len(names)}")
        template = self.template
        if "{}" not in template:
            raise ValueError(f"the template {template!r} needs a {{}} where the label goes")
        picture = self._take(image, name)
        self.labels = names

        async def run_async(model: CLIP) -> list[tuple[str, float]]:
            return self._show(await model.zero_shot_async(picture, names, template, timeout=self.timeout))

        return Task(
            f"score {len(names)} labels",
            lambda model: self._show(model.zero_shot(picture, names, template)),
            run_async,
            lambda ranked, seconds: f"{ranked[0][0]} ({ranked[0][1]:.0%}) in {seconds_text(seconds)}",
        )

    def _image_task(
        self, image: Image.Image | None, name: str, content: dict[str, Any]
    ) -> Task[CLIP, list[tuple[str, float]]]:
        if "template" in content:
            self.template = str(content["template"])
        return self._task(image, [str(s) for s in content.get("labels", self.labels)], name)
