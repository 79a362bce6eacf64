"""Tensors on devices: the `Tensor` class, creation functions, ops and autograd."""

from accelerate_lab.tensor.autograd import enable_grad, is_grad_enabled, no_grad
from accelerate_lab.tensor.creation import arange, full, ones, random, tensor, zeros
from accelerate_lab.tensor.dtypes import DTYPES, result_dtype
from accelerate_lab.tensor.ops import *  # noqa: F403  (the op namespace is listed in ops.__all__)
from accelerate_lab.tensor.ops import __all__ as _ops_all
from accelerate_lab.tensor.tensor import Tensor

__all__ = [
    "DTYPES",
    "Tensor",
    "arange",
    "enable_grad",
    "full",
    "is_grad_enabled",
    "no_grad",
    "ones",
    "random",
    "result_dtype",
    "tensor",
    "zeros",
    *_ops_all,
]
