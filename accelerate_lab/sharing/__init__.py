"""Tensors shared across models: `SharedTensor`, `SharedTensorView`, `TensorSharingManager`.

Users import these names from ``accelerate_lab``; the result dataclasses are listed here for typing.
"""

from accelerate_lab.sharing._errors import TensorFreedError
from accelerate_lab.sharing._events import EventKind, Listener, SharingEvent
from accelerate_lab.sharing._ledger import MemoryCounters
from accelerate_lab.sharing._manager import TensorSharingManager
from accelerate_lab.sharing._patterns import (
    DEFAULT_TENSOR_TYPES,
    get_compatible_models_for_tensor,
    register_tensor_type,
    reset_tensor_types,
    tensor_types,
)
from accelerate_lab.sharing._reports import (
    Action,
    DuplicateGroup,
    ModelUsage,
    OptimizationResult,
    Recommendation,
    SharingAnalysis,
    SharingStats,
    TensorUsage,
)
from accelerate_lab.sharing._tensor import SharedTensor
from accelerate_lab.sharing._view import SharedTensorView

__all__ = [
    "DEFAULT_TENSOR_TYPES",
    "Action",
    "DuplicateGroup",
    "EventKind",
    "Listener",
    "MemoryCounters",
    "ModelUsage",
    "OptimizationResult",
    "Recommendation",
    "SharedTensor",
    "SharedTensorView",
    "SharingAnalysis",
    "SharingEvent",
    "SharingStats",
    "TensorFreedError",
    "TensorSharingManager",
    "TensorUsage",
    "get_compatible_models_for_tensor",
    "register_tensor_type",
    "reset_tensor_types",
    "tensor_types",
]
