"""Fixtures: the shipped SmolLM2 GGUF file, our model on the cpu, and transformers' reference (CPU torch)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accelerate_lab.models.llm import GGUFFile, Llama, resolve_gguf

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    return resolve_gguf()


@pytest.fixture(scope="session")
def gguf_file(gguf_path: Path) -> GGUFFile:
    return GGUFFile(gguf_path)


@pytest.fixture(scope="session")
def llama() -> Llama:
    """The model the `local` backend serves (loaded once for the model and the backend tests)."""
    from accelerate_lab.api.backends.local import LocalBackend

    return LocalBackend().model()


@pytest.fixture(scope="package", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread for ours and torch alike: steadier (and here faster) on 2 shared cores (for
    these tests only: the tests that run after them get numpy's count back)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(autouse=True)
def _registry_without_local() -> Iterator[None]:
    """Importing the `local` backend registers it; other tests expect the registry's defaults."""
    yield
    from accelerate_lab.api import reset_backends

    reset_backends()


@pytest.fixture(scope="session")
def hf_tokenizer(gguf_path: Path) -> Any:
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


@pytest.fixture(scope="session")
def hf_model(gguf_path: Path) -> Any:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.set_num_threads(1)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    return model.eval()
