"""OpenAI: chat (tools, streaming), embeddings, images, audio transcription and speech, moderation, models.

>>> from accelerate_lab.api import create_api_backend
>>> b = create_api_backend("openai", metadata={"openai_api_key": "sk-test"})
>>> b
<OpenAIBackend openai url=https://api.openai.com/v1 key=********>
"""

from __future__ import annotations

from pathlib import Path

from accelerate_lab.api._base import Settings
from accelerate_lab.api._types import HttpResponse, Priority
from accelerate_lab.api.backends._openai_compat import OpenAICompatible
from accelerate_lab.api.protocols import openai as proto
from accelerate_lab.api.protocols.openai import GeneratedImage, Moderation

__all__ = ["Backend", "OpenAIBackend"]

P = Priority.NORMAL


def _audio(audio: bytes | str | Path) -> tuple[bytes, str]:
    if isinstance(audio, bytes):
        return audio, "audio.wav"
    path = Path(audio)
    return path.read_bytes(), path.name


def _content(response: HttpResponse) -> bytes:
    return response.content


class OpenAIBackend(OpenAICompatible):
    name = "openai"
    default_url = "https://api.openai.com/v1"
    default_model = "gpt-4o-mini"
    default_embed_model = "text-embedding-3-small"
    requires_key = True

    def _setup(self, metadata: Settings) -> None:
        self._org = str(metadata.get("openai_organization", ""))

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        if self._org:
            headers["OpenAI-Organization"] = self._org
        return headers

    def generate_image(
        self,
        prompt: str,
        model: str = "dall-e-3",
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> list[GeneratedImage]:
        """`opts`: size, n, quality, response_format ("url" or "b64_json")."""
        return self._call(proto.images_request(model, prompt, opts), proto.parse_images, priority, timeout)

    async def agenerate_image(
        self,
        prompt: str,
        model: str = "dall-e-3",
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> list[GeneratedImage]:
        return await self._acall(
            proto.images_request(model, prompt, opts), proto.parse_images, priority, timeout
        )

    def transcribe(
        self,
        audio: bytes | str | Path,
        model: str = "whisper-1",
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> str:
        """Speech to text; `audio` is a file's bytes or its path.
        `opts`: language, prompt, response_format."""
        data, filename = _audio(audio)
        req = proto.transcription_request(model, data, filename, opts)
        return self._call(req, proto.parse_transcription, priority, timeout)

    async def atranscribe(
        self,
        audio: bytes | str | Path,
        model: str = "whisper-1",
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> str:
        data, filename = _audio(audio)
        req = proto.transcription_request(model, data, filename, opts)
        return await self._acall(req, proto.parse_transcription, priority, timeout)

    def speech(
        self,
        text: str,
        model: str = "tts-1",
        voice: str = "alloy",
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> bytes:
        """Text to speech: the audio file's bytes (mp3 unless `response_format=` says otherwise)."""
        return self._call(proto.speech_request(model, text, voice, opts), _content, priority, timeout)

    async def aspeech(
        self,
        text: str,
        model: str = "tts-1",
        voice: str = "alloy",
        *,
        priority: Priority = P,
        timeout: float | None = None,
        **opts: object,
    ) -> bytes:
        return await self._acall(proto.speech_request(model, text, voice, opts), _content, priority, timeout)

    def moderate(
        self,
        texts: str | list[str],
        model: str = "omni-moderation-latest",
        *,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> list[Moderation]:
        items = [texts] if isinstance(texts, str) else texts
        return self._call(proto.moderation_request(model, items), proto.parse_moderation, priority, timeout)

    async def amoderate(
        self,
        texts: str | list[str],
        model: str = "omni-moderation-latest",
        *,
        priority: Priority = P,
        timeout: float | None = None,
    ) -> list[Moderation]:
        items = [texts] if isinstance(texts, str) else texts
        return await self._acall(
            proto.moderation_request(model, items), proto.parse_moderation, priority, timeout
        )


Backend = OpenAIBackend
