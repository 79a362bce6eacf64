"""``BertDemo``: sentences in, the cosine similarity of every pair out, as a heatmap.

>>> from accelerate_lab.widgets import BertDemo
>>> demo = BertDemo()  # the shipped all-MiniLM-L6-v2, loading in the background  # doctest: +SKIP
>>> demo.compare(["A cat sleeps.", "A kitten naps.", "Stocks fell."]).round(1)  # doctest: +SKIP
array([[1. , 0.6, 0. ],
       [0.6, 1. , 0. ],
       [0. , 0. , 1. ]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from accelerate_lab.models import BERT
from accelerate_lab.models.bert import DEFAULT_SOURCE
from accelerate_lab.widgets.demos._base import ModelDemo, Source, Task, seconds_text

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["BertDemo"]

SENTENCES = (
    "The GPU runs the kernel.",
    "A graphics card executes the shader.",
    "The cat sleeps on the sofa.",
    "A kitten naps on the couch.",
    "I had pasta for lunch.",
)


class BertDemo(ModelDemo[BERT]):
    """BERT sentence embeddings compared pairwise (``embed`` normalises, so a dot product is a cosine).

    ``source``: a model folder, package or hub id (default: the shipped all-MiniLM-L6-v2); or pass a
    loaded ``model``. ``device`` is where it loads first; ``sharing`` and ``dtype`` go to
    ``BERT.from_pretrained``. ``sentences`` fill the text box.
    """

    sentences = traitlets.List(traitlets.Unicode()).tag(sync=True)
    compared = traitlets.List(traitlets.Unicode()).tag(sync=True)
    similarity = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)

    def __init__(
        self,
        source: Source | None = None,
        *,
        model: BERT | None = None,
        device: str = "cpu",
        sharing: TensorSharingManager | None = None,
        dtype: str = "fp32",
        sentences: Sequence[str] = SENTENCES,
        timeout: float = 600.0,
    ) -> None:
        super().__init__(
            BERT.from_pretrained,
            source,
            model,
            device=device,
            sharing=sharing,
            dtype=dtype,
            timeout=timeout,
            default_source=DEFAULT_SOURCE,
            kind="bert",
            title="BERT · sentence similarity",
            sentences=list(sentences),
        )

    def compare(self, sentences: Sequence[str] | None = None) -> np.ndarray:
        """The ``(N, N)`` cosine similarities of ``sentences`` (default: the text box's), as a heatmap."""
        return self._call(self._task(sentences), "compare")

    async def compare_async(self, sentences: Sequence[str] | None = None) -> np.ndarray:
        """`compare`, awaited: works on every device, ``browser:webgpu`` included."""
        return await self._call_async(self._task(sentences))

    def _task(self, sentences: Sequence[str] | None) -> Task[BERT, np.ndarray]:
        texts = [s.strip() for s in (self.sentences if sentences is None else sentences) if s.strip()]
        if len(texts) < 2:
            raise ValueError(f"compare needs at least two sentences, got {len(texts)}")
        self.sentences = texts

        def show(embeddings: np.ndarray) -> np.ndarray:
            matrix: np.ndarray = embeddings @ embeddings.T
            self.compared, self.similarity = texts, matrix.round(4).tolist()
            return matrix

        async def run_async(model: BERT) -> np.ndarray:
            return show(await model.embed_async(texts, timeout=self.timeout))

        return Task(
            f"embed {len(texts)} sentences",
            lambda model: show(model.embed(texts)),
            run_async,
            lambda _, seconds: f"embedded {len(texts)} sentences in {seconds_text(seconds)}",
        )

    def _on_action(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        if content.get("kind") == "compare":
            self._start(self._task([str(s) for s in content["sentences"]]))
        else:
            super()._on_action(content, buffers)
