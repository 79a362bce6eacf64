"""accelerate_lab: a notebook workbench for hardware-accelerated AI.

>>> import accelerate_lab as al
>>> (al.tensor([1.0, 2.0]) * 3).tolist()
[3.0, 6.0]
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from accelerate_lab.errors import (
    AccelerateLabError,
    DeviceError,
    DeviceMismatchError,
    MemoryBudgetExceeded,
    ShapeError,
    UnsupportedKernelError,
)
from accelerate_lab.hal import Device, DeviceInfo, devices, get_device, register_device
from accelerate_lab.hal.select import select_device
from accelerate_lab.sharing import (
    SharedTensor,
    SharedTensorView,
    SharingEvent,
    TensorFreedError,
    TensorSharingManager,
    get_compatible_models_for_tensor,
    register_tensor_type,
    reset_tensor_types,
)
from accelerate_lab.tensor import (
    DTYPES,
    Tensor,
    abs,
    add,
    arange,
    argmax,
    binary_cross_entropy,
    broadcast_shapes,
    broadcast_to,
    cast,
    clone,
    concat,
    conv1d,
    conv2d,
    cross_entropy,
    div,
    embedding,
    enable_grad,
    eq,
    exp,
    flatten,
    full,
    fused_linear,
    ge,
    gelu,
    getitem,
    gt,
    is_grad_enabled,
    layer_norm,
    le,
    linear,
    log,
    log_softmax,
    lt,
    matmul,
    matrix_transpose,
    max,
    maximum,
    mean,
    min,
    minimum,
    mse_loss,
    mul,
    ne,
    neg,
    no_grad,
    ones,
    pow,
    random,
    relu,
    reshape,
    result_dtype,
    scaled_dot_product_attention,
    sigmoid,
    sign,
    silu,
    slice,
    softmax,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    tanh,
    tensor,
    transpose,
    unsqueeze,
    var,
    where,
    zeros,
)

if TYPE_CHECKING:  # the widgets are imported lazily by __getattr__; type checkers see them here
    from IPython.core.interactiveshell import InteractiveShell

    from accelerate_lab.widgets import (
        BertDemo,
        BrowserDevice,
        Chat,
        ClipDemo,
        MemoryDashboard,
        VitDemo,
        WhisperDemo,
    )

_WIDGETS = ("BertDemo", "BrowserDevice", "Chat", "ClipDemo", "MemoryDashboard", "VitDemo", "WhisperDemo")


def __getattr__(name: str) -> object:
    """``al.BrowserDevice``, ``al.Chat``, ``al.MemoryDashboard`` and the model demos (``al.BertDemo``,
    ...), imported on first use: the core must not need ipywidgets/anywidget."""
    if name in _WIDGETS:
        import accelerate_lab.widgets

        return getattr(accelerate_lab.widgets, name)
    raise AttributeError(f"module 'accelerate_lab' has no attribute {name!r}")


def load_ipython_extension(ipython: "InteractiveShell") -> None:
    """``%load_ext accelerate_lab``: registers the ``%%chat`` cell magic."""
    from accelerate_lab.widgets.magics import load_ipython_extension as register

    register(ipython)


try:
    __version__ = version("accelerate_lab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "DTYPES",
    "AccelerateLabError",
    "BertDemo",
    "BrowserDevice",
    "Chat",
    "ClipDemo",
    "Device",
    "DeviceError",
    "DeviceInfo",
    "DeviceMismatchError",
    "MemoryBudgetExceeded",
    "MemoryDashboard",
    "ShapeError",
    "SharedTensor",
    "SharedTensorView",
    "SharingEvent",
    "Tensor",
    "TensorFreedError",
    "TensorSharingManager",
    "UnsupportedKernelError",
    "VitDemo",
    "WhisperDemo",
    "__version__",
    "abs",
    "add",
    "arange",
    "argmax",
    "binary_cross_entropy",
    "broadcast_shapes",
    "broadcast_to",
    "cast",
    "clone",
    "concat",
    "conv1d",
    "conv2d",
    "cross_entropy",
    "devices",
    "div",
    "embedding",
    "enable_grad",
    "eq",
    "exp",
    "flatten",
    "full",
    "fused_linear",
    "ge",
    "gelu",
    "get_compatible_models_for_tensor",
    "get_device",
    "getitem",
    "gt",
    "is_grad_enabled",
    "layer_norm",
    "le",
    "linear",
    "log",
    "log_softmax",
    "lt",
    "matmul",
    "matrix_transpose",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mse_loss",
    "mul",
    "ne",
    "neg",
    "no_grad",
    "ones",
    "pow",
    "random",
    "register_device",
    "register_tensor_type",
    "relu",
    "reset_tensor_types",
    "reshape",
    "result_dtype",
    "scaled_dot_product_attention",
    "select_device",
    "sigmoid",
    "sign",
    "silu",
    "slice",
    "softmax",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "tanh",
    "tensor",
    "transpose",
    "unsqueeze",
    "var",
    "where",
    "zeros",
]
