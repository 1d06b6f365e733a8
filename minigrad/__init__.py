"""minigrad: a small reverse-mode autograd engine over NumPy, with nn layers and optimizers."""

from minigrad import functional, memory, nn, optim
from minigrad.gradcheck import GradcheckError, gradcheck, random_tensors
from minigrad.ops import concatenate, split, stack, where
from minigrad.serialization import load, save
from minigrad.tensor import Function, Tensor, is_grad_enabled, no_grad

__all__ = [
    "Function",
    "GradcheckError",
    "Tensor",
    "concatenate",
    "functional",
    "gradcheck",
    "is_grad_enabled",
    "load",
    "memory",
    "nn",
    "no_grad",
    "optim",
    "random_tensors",
    "save",
    "split",
    "stack",
    "where",
]
