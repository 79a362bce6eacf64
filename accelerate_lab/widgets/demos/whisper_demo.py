"""``WhisperDemo``: an audio file (or the microphone) in, the transcript out, growing as Whisper decodes.

The widget decodes a chosen file (or records the microphone) in the browser and sends the kernel
16 kHz mono float32 samples as binary buffers; Whisper transcribes them 30 s window by window, and
each window's text shows as soon as it is decoded. While the microphone records, the audio heard so
far is transcribed again whenever the previous pass has finished, so the text follows the speaker.

>>> from accelerate_lab.widgets import WhisperDemo
>>> demo = WhisperDemo()  # the shipped tiny.en, loading in the background  # doctest: +SKIP
>>> demo.transcribe("speech.wav")                                           # doctest: +SKIP
'The quick brown fox jumps over the lazy dog.'
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from accelerate_lab.models import Whisper, load_audio
from accelerate_lab.models.audio import AudioLike
from accelerate_lab.models.whisper.features import CHUNK_SAMPLES, SAMPLE_RATE
from accelerate_lab.models.whisper.model import DEFAULT_SOURCE
from accelerate_lab.widgets.demos._base import ModelDemo, Source, Task, seconds_text

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["WhisperDemo"]

_LIVE_TOKENS_PER_S = 6  # speech is 2-4 tokens a second: room to spare, not for a loop of repeats


def _joined(texts: Iterable[str]) -> str:
    return " ".join(text for text in texts if text)


class WhisperDemo(ModelDemo[Whisper]):
    """Whisper speech to text on a file or the microphone, with the transcript streaming in.

    ``source``: a Whisper folder, package or hub id (default: the shipped tiny.en), or a loaded
    ``model``; ``device``, ``sharing`` and ``dtype`` as for `BertDemo`.
    """

    transcript = traitlets.Unicode("").tag(sync=True)
    audio_name = traitlets.Unicode("").tag(sync=True)
    audio_seconds = traitlets.Float(0.0).tag(sync=True)
    recording = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        source: Source | None = None,
        *,
        model: Whisper | None = None,
        device: str = "cpu",
        sharing: TensorSharingManager | None = None,
        dtype: str = "fp32",
        timeout: float = 600.0,
    ) -> None:
        super().__init__(
            Whisper.from_pretrained,
            source,
            model,
            device=device,
            sharing=sharing,
            dtype=dtype,
            timeout=timeout,
            default_source=DEFAULT_SOURCE,
            kind="whisper",
            title="Whisper · speech to text",
        )
        self._begin("", [])

    def transcribe(self, audio: AudioLike) -> str:
        """The text of ``audio`` (a file path, or mono 16 kHz samples), shown as each window finishes."""
        return self._call(self._task(load_audio(audio, SAMPLE_RATE), _name(audio)), "transcribe")

    async def transcribe_async(self, audio: AudioLike) -> str:
        """`transcribe`, awaited: works on every device, ``browser:webgpu`` included."""
        return await self._call_async(self._task(load_audio(audio, SAMPLE_RATE), _name(audio)))

    def _task(self, samples: np.ndarray, name: str) -> Task[Whisper, str]:
        if samples.size == 0:
            raise ValueError(f"{name} holds no audio")
        self._begin(name, [samples])
        return self._pass(final=True, what=f"transcribe {self.audio_seconds:.1f} s")

    def _begin(self, name: str, heard: list[np.ndarray]) -> None:
        self._texts: list[str] = []
        self._heard, self._committed = heard, 0
        self._waiting: Future[str] | None = None  # the last live pass queued
        self.audio_name, self.transcript = name, ""
        self.audio_seconds = sum(part.size for part in heard) / SAMPLE_RATE

    def _pass(self, final: bool, what: str) -> Task[Whisper, str]:
        """Transcribe what was heard after the committed windows; windows that are complete (all of
        them when ``final``) are committed, the last incomplete one is shown until the next pass."""
        todo = [np.zeros(0, np.float32)]

        def take() -> tuple[np.ndarray, int | None]:
            todo[0] = np.concatenate(self._heard)[self._committed :]
            # a live pass on a second of audio must not decode a hallucinated page: cap it by the audio
            seconds = min(todo[0].size, CHUNK_SAMPLES) / SAMPLE_RATE
            return todo[0], None if final else int(_LIVE_TOKENS_PER_S * seconds) + 8

        def add(index: int, text: str) -> None:
            left = todo[0].size - index * CHUNK_SAMPLES
            tail = ""
            if final or left >= CHUNK_SAMPLES:
                self._texts.append(text)
                self._committed += min(left, CHUNK_SAMPLES)
            else:
                tail = text
            self.transcript = _joined([*self._texts, tail])

        def run(model: Whisper) -> str:
            samples, cap = take()
            for index, text in enumerate(model.transcribe_stream(samples, cap)):
                add(index, text)
            return self.transcript

        async def run_async(model: Whisper) -> str:
            (samples, cap), index = take(), 0
            async for text in model.transcribe_stream_async(samples, cap, timeout=self.timeout):
                add(index, text)
                index += 1
            return self.transcript

        def summary(_: str, took: float) -> str:
            seconds = todo[0].size / SAMPLE_RATE
            speed = f"{seconds / took:.1f}x real time"
            return f"transcribed {seconds:.1f} s of audio in {seconds_text(took)} ({speed})"

        return Task(what, run, run_async, summary)

    def _on_action(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        kind = content.get("kind")
        samples = np.frombuffer(buffers[0], "<f4").astype(np.float32) if buffers else None
        if kind == "audio":
            name = str(content.get("name", "audio"))
            if samples is None:
                raise ValueError(f"{name} arrived without its samples")
            self._start(self._task(samples, name))
        elif kind == "mic" and content.get("state") == "start":
            self._begin("microphone", [])
            self.recording = True
        elif kind == "pcm" and samples is not None and self.recording:
            self._heard.append(samples)
            self.audio_seconds += samples.size / SAMPLE_RATE
            # one live pass waits at most: when it starts, it takes everything heard by then
            waiting = self._waiting
            if waiting is None or waiting.running() or waiting.done():
                self._waiting = self._start(self._pass(final=False, what="transcribe (live)"))
        elif kind == "mic" and content.get("state") == "stop":
            self.recording = False
            if self._waiting is not None:  # the final pass hears all: a live pass not started is moot
                self._waiting.cancel()
            if self._heard:
                self._start(self._pass(final=True, what=f"transcribe {self.audio_seconds:.1f} s"))
        else:
            super()._on_action(content, buffers)


def _name(audio: AudioLike) -> str:
    if isinstance(audio, np.ndarray):
        return f"{audio.shape[0] / SAMPLE_RATE:.1f} s of samples"
    return Path(audio).name
