"""Finding and preparing the WGSL in ``shaders/`` (source checkout) or ``accelerate_lab/shaders`` (wheel).

The files are the single source for the native device and the browser. Preparation is a small,
fixed set of text rewrites that the browser front end repeats: ``//#if NAME`` / ``//#else`` /
``//#endif`` blocks keyed by adapter flags (``F16``, ``SUBGROUPS``), ``alias NAME = type;`` lines
set to one of the storage types below, and ``//{{SLOT}}`` lines filled by generated code. No value
from user data ever reaches the source: sizes and scalars travel in uniforms.

>>> "fn f_exp(" in load("elementwise_ops.wgsl")
True
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from accelerate_lab.errors import DeviceError

__all__ = ["STORAGE_TYPES", "compose", "library_ops", "load", "prepare", "shader_dir"]

STORAGE_TYPES = frozenset({"f32", "f16", "i32", "u32", "vec2<u32>"})
_ALIAS = re.compile(r"^alias (\w+) = [\w<>]+;$")
_LIBRARY_FN = re.compile(r"^fn ([fiubl])_(\w+)\(", re.MULTILINE)
# directives the browser requires and naga (wgpu-native 29) rejects as "not yet implemented"
_NAGA_IMPLICIT = frozenset({"enable subgroups;"})


@functools.cache
def shader_dir() -> Path:
    """The folder holding the ``.wgsl`` files, in an installed wheel or a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "shaders", here.parent / "shaders"):
        if (candidate / "elementwise.wgsl").is_file():
            return candidate
    raise DeviceError(
        f"the WGSL kernels are missing: looked in {here / 'shaders'} and {here.parent / 'shaders'}"
    )


@functools.cache
def load(name: str) -> str:
    """The text of one shader file."""
    return (shader_dir() / name).read_text(encoding="utf-8")


@functools.cache
def library_ops() -> frozenset[tuple[str, str]]:
    """The ``(class, op)`` pairs ``elementwise_ops.wgsl`` defines, like ``("f", "exp")``."""
    return frozenset(_LIBRARY_FN.findall(load("elementwise_ops.wgsl")))


def _select_blocks(lines: Iterable[str], flags: frozenset[str]) -> list[str]:
    out: list[str] = []
    stack: list[bool] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("//#if "):
            stack.append(stripped[6:].strip() in flags)
        elif stripped == "//#else":
            stack[-1] = not stack[-1]
        elif stripped == "//#endif":
            stack.pop()
        elif all(stack):
            out.append(line)
    if stack:
        raise DeviceError("unbalanced //#if in a shader")
    return out


def prepare(
    source: str,
    flags: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
    slots: Mapping[str, str] | None = None,
) -> str:
    """Apply the rewrites: keep the ``//#if`` blocks whose flag is set, set aliases, fill slots."""
    aliases = aliases or {}
    slots = slots or {}
    bad = {name: t for name, t in aliases.items() if t not in STORAGE_TYPES}
    if bad:
        raise ValueError(f"alias types must be one of {sorted(STORAGE_TYPES)}, got {bad}")
    out = []
    for line in _select_blocks(source.splitlines(), frozenset(flags)):
        match = _ALIAS.match(line.strip())
        if match and match.group(1) in aliases:
            line = f"alias {match.group(1)} = {aliases[match.group(1)]};"
        stripped = line.strip()
        if stripped.startswith("//{{") and stripped.endswith("}}"):
            line = slots[stripped[4:-2]]
        out.append(line)
    return "\n".join(out) + "\n"


def compose(*sources: str) -> str:
    """Concatenate prepared sources, hoisting ``enable`` directives to the top as WGSL requires; those
    naga lacks (``_NAGA_IMPLICIT``) are dropped: the device feature alone turns the functions on."""
    directives: list[str] = []
    body: list[str] = []
    for source in sources:
        for line in source.splitlines():
            if line.startswith("enable "):
                if line not in directives and line not in _NAGA_IMPLICIT:
                    directives.append(line)
            else:
                body.append(line)
    return "\n".join([*directives, *body]) + "\n"
