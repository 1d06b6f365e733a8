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
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Compare the gradients of `fn(*inputs)` with central finite differences.

    Every output (a tensor, a number, or a tuple of them) is weighted by fixed random
    numbers and summed to one scalar, so every output element is checked. Only inputs with
    `requires_grad` are perturbed; they must be float64. The check runs on private leaf
    copies of them, so the caller's tensors, their `.grad` and their graphs stay as they
    were. An element passes when |analytic - numeric| <= atol + rtol |numeric| (a NaN
    fails). Returns True, or raises `GradcheckError` naming the input, the worst index and
    both values.
    """
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64")
    leaves = [
        Tensor(np.array(t.data, order="C"), requires_grad=True) if i in checked else t
        for i, t in enumerate(inputs)
    ]  # copies: C-ordered, 0-d stays 0-d, and perturbing them leaves the caller's data alone

    with no_grad():
        shapes = [np.shape(out) for out in _outputs(fn(*leaves))]
    rng = np.random.default_rng(1234)
    weights = [Tensor(rng.standard_normal(shape)) for shape in shapes]

    def weighted_sum() -> Tensor:
        outputs = _outputs(fn(*leaves))
        if len(outputs) != len(weights):
            raise ValueError(f"gradcheck: fn returned {len(outputs)} outputs, then {len(weights)}")
        return sum((out * w).sum() for out, w in zip(outputs, weights))

    loss = weighted_sum()
    if loss.requires_grad:  # otherwise fn's result does not depend on the inputs' graph
        loss.backward()

    for i in checked:
        x = leaves[i]
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad
        numeric = np.zeros_like(x.data)
        flat = x.data.reshape(-1)  # a view of the private copy: writing it perturbs the input
        with no_grad():
            for j in range(flat.size):
                original = flat[j]
                flat[j] = original + eps
                plus = float(weighted_sum().data)
                flat[j] = original - eps
                minus = float(weighted_sum().data)
                flat[j] = original
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        difference = np.abs(analytic - numeric)
        tolerance = atol + rtol * np.abs(numeric)
        wrong = ~(difference <= tolerance)  # NaN (a non-finite value on either side) is wrong
        if np.any(wrong):
            excess = np.where(wrong, np.nan_to_num(difference - tolerance, nan=np.inf), -np.inf)
            worst = np.unravel_index(np.argmax(excess), x.shape)
            raise GradcheckError(
                f"gradient of input {i} (shape {x.shape}) is wrong at index "
                f"{tuple(map(int, worst))}: "
                f"analytic {analytic[worst].item()!r}, finite difference {numeric[worst].item()!r}"
            )
    return True


def _outputs(result: Any) -> list[Tensor]:
    """fn's result as a list of tensors: a tuple or list of outputs, or a single one."""
    results = result if isinstance(result, (tuple, list)) else [result]
    return [r if isinstance(r, Tensor) else Tensor(np.asarray(r, np.float64)) for r in results]
