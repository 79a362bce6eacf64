"""The documentation's examples run: every ``>>>`` line of the guides in docs/ is a doctest against
the code as it is, so a guide that drifts from the code fails here."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if ">>>" in p.read_text(encoding="utf-8"))
# a fence line would read as the end of an example's expected output: blank it (line numbers stay)
FENCE = re.compile(r"^[ \t]*```.*$", re.MULTILINE)


def test_the_guides_have_examples() -> None:
    assert {p.stem for p in PAGES} >= {"getting-started", "tensors-and-sharing", "api-backends-and-chat"}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_guide_examples_run(page: Path) -> None:
    parser = doctest.DocTestParser()
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    test = parser.get_doctest(text, {}, page.stem, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
