"""Check analytic gradients against central finite differences.

For a scalar function f, df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), with an
error of order eps^2. Comparing that with what backward computes is the test of every
derivative in this project; float64 keeps the rounding error far below the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def random_tensors(
    *shapes: tuple[int, ...], seed: int = 0, requires_grad: bool = True
) -> list[Tensor]:
    """Standard-normal float64 tensors of the given shapes, from one seeded generator."""
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(shape), requires_grad=requires_grad) for shape in shapes]


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Compare the gradients of `fn(*inputs)` with central finite differences.

    Non-scalar outputs are reduced to a scalar with fixed random weights, so every output
    element is checked. Only inputs with `requires_grad` are perturbed; they must be
    float64. Returns True, or raises `GradcheckError` naming the input, the worst index
    and both values.
    """
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64")

    with no_grad():
        out = fn(*inputs)
    weights = np.random.default_rng(1234).standard_normal(out.shape)

    def scalar(out: Tensor) -> Any:
        return out * Tensor(weights) if out.ndim else out

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    loss = scalar(fn(*inputs)).sum()
    loss.backward()

    for i in checked:
        x = inputs[i]
        x.data = np.ascontiguousarray(x.data)
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad
        numeric = np.zeros_like(x.data)
        flat = x.data.reshape(-1)  # a view: writing it perturbs the input in place
        with no_grad():
            for j in range(flat.size):
                original = flat[j]
                flat[j] = original + eps
                plus = float(scalar(fn(*inputs)).sum().data)
                flat[j] = original - eps
                minus = float(scalar(fn(*inputs)).sum().data)
                flat[j] = original
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(error > 0) or not np.all(np.isfinite(analytic)):
            worst = np.unravel_index(
                np.nanargmax(np.where(np.isfinite(error), error, np.inf)), x.shape
            )
            raise GradcheckError(
                f"gradient of input {i} (shape {x.shape}) is wrong at index "
                f"{tuple(map(int, worst))}: "
                f"analytic {analytic[worst]!r}, finite difference {numeric[worst]!r}"
            )
    return True
