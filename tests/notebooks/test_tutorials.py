"""The tutorials as committed: outputs stripped (diffs stay readable, nothing private is saved), and every
one linked from the tour. ``pytest --nbval-lax notebooks`` executes them in the test command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
OURS = ["00_tour.ipynb", "04_models.ipynb", "05_api_chat.ipynb"]


@pytest.mark.parametrize("name", OURS)
def test_tutorial_is_committed_without_outputs(name: str) -> None:
    notebook = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert "widgets" not in notebook["metadata"]  # no saved widget state


def test_tour_links_every_tutorial() -> None:
    tour = json.loads((NOTEBOOKS / "00_tour.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in tour["cells"] if c["cell_type"] == "markdown")
    for path in sorted(NOTEBOOKS.glob("0[1-9]_*.ipynb")):
        assert f"({path.name})" in text, f"the tour does not link {path.name}"
