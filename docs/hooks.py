"""mkdocs hooks: docstring examples render as Python code.

The package's docstrings hold doctests as plain ``>>>`` lines (they run under ``pytest
--doctest-modules``); Markdown would read them as block quotes and their output as links. This
preprocessor fences each example (from its first ``>>>`` line to the next blank line) as ``pycon``
before any other Markdown processing, in the guides and in the docstrings mkdocstrings renders.
"""

from __future__ import annotations

from typing import Any

from markdown import Markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority


class DoctestFences(Preprocessor):
    """Wraps each run of doctest lines outside a fenced block in a ``pycon`` fence."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_fence = in_example = False
        indent = ""
        for line in lines:
            stripped = line.lstrip()
            if in_example and not stripped:
                out += [f"{indent}```", ""]
                in_example = False
            elif not in_example and stripped.startswith("```"):
                in_fence = not in_fence
            elif not (in_fence or in_example) and stripped.startswith(">>>"):
                indent = line[: len(line) - len(stripped)]
                out += ["", f"{indent}```pycon"]
                in_example = True
            out.append(line)
        if in_example:
            out.append(f"{indent}```")
        return out


class DoctestFencesExtension(Extension):
    """Registers `DoctestFences` ahead of the fenced-code preprocessor (priority 25)."""

    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(DoctestFences(md), "doctest_fences", 27)


@event_priority(100)  # before mkdocstrings reads the extensions to render docstrings with
def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    config.markdown_extensions.append(DoctestFencesExtension())
    return config
