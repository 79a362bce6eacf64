"""Shared fixtures: a clean device registry around every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

# scripts that the servers' own pythons run (kserve's model, vLLM's checkpoint writer), not test modules
collect_ignore = ["api/kserve_model.py", "api/vllm_model.py"]


@pytest.fixture(autouse=True)
def _fresh_devices() -> Iterator[None]:
    from accelerate_lab.hal import reset_devices

    yield
    reset_devices()
