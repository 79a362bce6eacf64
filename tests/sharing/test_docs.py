"""The sharing layer's docstring examples run, and its public names are exported from accelerate_lab."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import accelerate_lab as al
import accelerate_lab.sharing as sharing

MODULES = [info.name for info in pkgutil.iter_modules(sharing.__path__, "accelerate_lab.sharing.")]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    failures, _ = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert failures == 0


def test_design_names_are_exported() -> None:
    for name in (
        "TensorSharingManager",
        "SharedTensor",
        "SharedTensorView",
        "get_compatible_models_for_tensor",
    ):
        assert getattr(al, name) is getattr(sharing, name)
    assert issubclass(al.TensorFreedError, al.AccelerateLabError)
