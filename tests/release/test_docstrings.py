"""Every public name of the documented modules has a docstring: the API reference (mkdocstrings) is
generated from them, and a name without one would silently vanish from it."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest

MODULES = [
    "accelerate_lab",
    "accelerate_lab.api",
    "accelerate_lab.models",
    "accelerate_lab.widgets",
    "accelerate_lab.hal",
]


def has_docstring(obj: object) -> bool:
    """A class's own docstring (not an inherited one, nor the signature dataclasses write), or a routine's."""
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        if dataclasses.is_dataclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
            return False
    else:
        doc = obj.__doc__
    return bool(doc and doc.strip())


@pytest.mark.parametrize("module_name", MODULES)
def test_public_names_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert has_docstring(module), f"{module_name} has no module docstring"
    documentable = {
        name: getattr(module, name)
        for name in module.__all__
        if inspect.isclass(getattr(module, name)) or inspect.isroutine(getattr(module, name))
    }
    assert documentable, f"{module_name}.__all__ names no class or function"
    missing = sorted(name for name, obj in documentable.items() if not has_docstring(obj))
    assert not missing, f"public names of {module_name} without a docstring: {', '.join(missing)}"


def test_a_dataclass_without_a_docstring_is_caught() -> None:
    @dataclasses.dataclass
    class Plain:
        x: int

    @dataclasses.dataclass
    class Documented:
        """Has one."""

        x: int

    assert not has_docstring(Plain)
    assert has_docstring(Documented)
