"""Shared fixtures: a clean device registry around every test; the tensors read from weights files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

# scripts that the servers' own pythons run (kserve's model, vLLM's checkpoint writer), not test modules
collect_ignore = ["api/kserve_model.py", "api/vllm_model.py"]


@pytest.fixture(autouse=True)
def _fresh_devices() -> Iterator[None]:
    from accelerate_lab.hal import reset_devices

    yield
    reset_devices()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The names of the tensors read from weights files (the hash index lives under ``tmp_path``)."""
    from accelerate_lab.models.weights import SafetensorsFile  # imported after the environment is set

    monkeypatch.setenv("ACCELERATE_LAB_CACHE", str(tmp_path / "cache"))
    names: list[str] = []
    get = SafetensorsFile.get

    def counted(self: SafetensorsFile, name: str) -> np.ndarray:
        names.append(name)
        return get(self, name)

    monkeypatch.setattr(SafetensorsFile, "get", counted)
    return names
