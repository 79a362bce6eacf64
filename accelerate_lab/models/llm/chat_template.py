"""`ChatTemplate`: the Jinja chat template stored in a GGUF file, rendered in a sandbox.

Templates are untrusted code from a model file, so they run in Jinja's immutable sandbox with the
same settings and helpers as Hugging Face's ``apply_chat_template`` (``trim_blocks``,
``lstrip_blocks``, ``raise_exception``, ``strftime_now``, the ``tojson`` filter).

>>> t = ChatTemplate("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
...                  "{% if add_generation_prompt %}<assistant>{% endif %}")
>>> t.render([{"role": "user", "content": "hi"}])
'<user>hi<assistant>'
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import NoReturn

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from accelerate_lab.models.llm.errors import ChatTemplateError
from accelerate_lab.models.llm.gguf_file import GGUFFile

__all__ = ["ChatTemplate", "message_text"]

Message = Mapping[str, object]


def _raise(message: str) -> NoReturn:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


def _tojson(value: object, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def message_text(content: object) -> str:
    """A message's content as text: a string, or the ``text`` parts of an OpenAI-style list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [
            p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text"
        ]
        return "".join(str(p) for p in parts)
    raise ChatTemplateError(
        f"message content must be a string or a list of text parts, got {type(content).__name__}"
    )


class ChatTemplate:
    """A compiled chat template; ``bos_token`` and ``eos_token`` are passed to it as HF does."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = _strftime_now
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateError as error:
            raise ChatTemplateError(f"the model's chat template does not compile: {error}") from error
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token

    @classmethod
    def from_gguf(cls, file: GGUFFile, bos_token: str = "", eos_token: str = "") -> ChatTemplate:
        """The template in ``tokenizer.chat_template``; `ChatTemplateError` if the file has none."""
        if not file.has("tokenizer.chat_template"):
            raise ChatTemplateError(
                f"{file.path.name} has no chat template: use model.complete(prompt) for plain text completion"
            )
        return cls(file.get_str("tokenizer.chat_template"), bos_token=bos_token, eos_token=eos_token)

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """The prompt for ``messages`` (``{"role", "content"}`` mappings), ready for the assistant's turn."""
        plain = [{**m, "content": message_text(m.get("content", ""))} for m in messages]
        try:
            return self._template.render(
                messages=plain,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except jinja2.TemplateError as error:
            raise ChatTemplateError(f"the model's chat template refused these messages: {error}") from error
