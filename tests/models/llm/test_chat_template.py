"""The chat template from the file, rendered like transformers' ``apply_chat_template``."""

from __future__ import annotations

from typing import Any

import pytest

from accelerate_lab.models.llm import ChatTemplate, ChatTemplateError, GGUFFile

CONVERSATIONS = [
    [{"role": "user", "content": "Hi!"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"}],
    [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
    ],
]


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_renders_like_transformers(
    gguf_file: GGUFFile, hf_tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool
) -> None:
    ours = ChatTemplate.from_gguf(gguf_file).render(messages, add_generation_prompt=add_generation_prompt)
    ref = hf_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert ours == ref


def test_content_parts_are_joined_as_text() -> None:
    t = ChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}")
    parts = [
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": "x"},
        {"type": "text", "text": "b"},
    ]
    assert t.render([{"role": "user", "content": parts}]) == "ab"


def test_template_errors_are_typed() -> None:
    with pytest.raises(ChatTemplateError, match="does not compile"):
        ChatTemplate("{% for %}")
    refusing = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        refusing.render([{"role": "user", "content": "x"}])


def test_templates_run_in_a_sandbox() -> None:
    escape = ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ChatTemplateError):
        escape.render([])
