"""The backend registry: create backends by name, list them, and pick one from a model's name.

Model-name rules (first match wins; `backend:model` names a backend explicitly):

| backend | model names |
|---|---|
| openai  | gpt-*, chatgpt-*, o1*, o3*, o4*, text-embedding-3-*, text-embedding-ada-*, dall-e-*, |
|         | gpt-image-*, whisper-1, tts-1*, *-moderation-* |
| claude  | claude-* |
| gemini  | gemini-*, text-embedding-004, embedding-*, models/* |
| groq    | *-versatile, *-instant, mixtral-8x7b-32768, gemma2-9b-it |
| ollama  | name:tag (llama3.2:1b, qwen2.5:0.5b) |
| hf_tei  | BAAI/bge-*, sentence-transformers/*, intfloat/*, *rerank* |
| vllm    | org/name hub ids (also served by hf_tgi: pass `available=[...]` to prefer it) |
| sample  | sample-* |

>>> from accelerate_lab.api import find_compatible_backend
>>> find_compatible_backend("claude-3-5-haiku-latest"), find_compatible_backend("llama3.2:1b")
('claude', 'ollama')
>>> find_compatible_backend("Qwen/Qwen2.5-0.5B-Instruct", available=["hf_tgi", "vllm"])
'hf_tgi'
"""

from __future__ import annotations

import fnmatch
import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from accelerate_lab.api._base import ApiBackend
from accelerate_lab.api._errors import BackendNotFound

__all__ = [
    "BackendInfo",
    "create_api_backend",
    "find_compatible_backend",
    "get_available_backends",
    "register_backend",
    "reset_backends",
    "unregister_backend",
]

Settings = Mapping[str, object]
Factory = Callable[[Settings | None, Settings | None], ApiBackend]

BUILTIN = (
    "openai",
    "claude",
    "groq",
    "gemini",
    "ollama",
    "hf_tei",
    "hf_tgi",
    "ovms",
    "vllm",
    "opea",
    "s3_kit",
    "llvm",
    "sample",
    "local",
)

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("local", ("smollm*", "*.gguf")),  # first: "models/x.gguf" is a local file, not a Gemini model
    (
        "openai",
        (
            "gpt-*",
            "chatgpt-*",
            "o1*",
            "o3*",
            "o4*",
            "text-embedding-3-*",
            "text-embedding-ada-*",
            "dall-e-*",
            "gpt-image-*",
            "whisper-1",
            "tts-1*",
            "*-moderation-*",
        ),
    ),
    ("claude", ("claude-*",)),
    ("gemini", ("gemini-*", "text-embedding-004", "embedding-*", "models/*")),
    ("groq", ("*-versatile", "*-instant", "mixtral-8x7b-32768", "gemma2-9b-it")),
    ("ollama", ("*:*",)),
    ("hf_tei", ("baai/bge-*", "sentence-transformers/*", "intfloat/*", "*rerank*")),
    ("vllm", ("*/*",)),
    ("hf_tgi", ("*/*",)),
    ("sample", ("sample-*",)),
)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    factory: Factory
    model_patterns: tuple[str, ...] = ()


_lock = threading.Lock()
_registry: dict[str, BackendInfo] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
    patterns = dict(RULES)
    for name in BUILTIN:
        module = importlib.import_module(f"accelerate_lab.api.backends.{name}")
        backend_cls: type[ApiBackend] = module.Backend
        register_backend(name, backend_cls, model_patterns=patterns.get(name, ()), replace=True)


def register_backend(
    name: str, factory: Factory, *, model_patterns: Sequence[str] = (), replace: bool = False
) -> None:
    """Adds a backend (a class or any `factory(resources, metadata) -> ApiBackend`)."""
    with _lock:
        if name in _registry and not replace:
            raise ValueError(f"backend {name!r} is already registered; pass replace=True to override it")
        _registry[name] = BackendInfo(name, factory, tuple(p.lower() for p in model_patterns))


def unregister_backend(name: str) -> None:
    """Removes the backend ``name`` from the registry (nothing happens when it is not registered)."""
    with _lock:
        _registry.pop(name, None)


def reset_backends() -> None:
    """Forgets every registration, built-ins included; they come back on next use (for tests)."""
    global _builtins_loaded
    with _lock:
        _registry.clear()
        _builtins_loaded = False


def get_available_backends() -> list[str]:
    """Names of every registered backend, sorted."""
    _load_builtins()
    with _lock:
        return sorted(_registry)


def create_api_backend(
    name: str, resources: Settings | None = None, metadata: Settings | None = None
) -> ApiBackend:
    """A configured backend. Keys and URLs come from `metadata` (`<name>_api_key`, `<name>_api_url`)
    or the environment (`<NAME>_API_KEY`, `<NAME>_API_URL`); resilience settings from either.

    >>> b = create_api_backend("ollama", metadata={"ollama_api_url": "http://127.0.0.1:11434"})
    >>> b.name, b.get_default_model()
    ('ollama', 'llama3.2')
    """
    _load_builtins()
    with _lock:
        info = _registry.get(name)
    if info is None:
        known = ", ".join(get_available_backends())
        raise BackendNotFound(f"no backend named {name!r}; available: {known}")
    return info.factory(resources, metadata)


def find_compatible_backend(model: str, available: Sequence[str] | None = None) -> str | None:
    """The backend whose model-name rules match `model` (see the table above), or None.
    With `available`, only those are considered, in that order of preference."""
    _load_builtins()
    prefix, sep, _rest = model.partition(":")
    with _lock:
        registry = dict(_registry)
    candidates = list(available) if available is not None else list(registry)
    if sep and prefix in registry and prefix in candidates:
        return prefix
    lowered = model.lower()
    order = sorted(candidates, key=lambda n: [r[0] for r in RULES].index(n) if n in dict(RULES) else -1)
    if available is not None:
        order = candidates
    for name in order:
        info = registry.get(name)
        if info and any(fnmatch.fnmatchcase(lowered, p) for p in info.model_patterns):
            return name
    return None
