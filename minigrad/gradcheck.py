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
    `requires_grad` are perturbed; they must be float64. Leaf inputs are perturbed in place,
    one element at a time, so `fn` may also reach them another way (a module's parameters
    used by `module(x)`); afterwards their data and `.grad` are as they were, also when `fn`
    raises. A non-leaf input is replaced by a leaf copy. An element passes when
    |analytic - numeric| <= atol + rtol |numeric| (a NaN fails). Returns True, or raises
    `GradcheckError` naming the input, the worst index and both values.
    """
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64")
    leaves = [
        Tensor(np.array(t.data), requires_grad=True) if i in checked and not t.is_leaf else t
        for i, t in enumerate(inputs)
    ]
    caller_grads = {i: leaves[i].grad for i in checked}
    try:
        for i in checked:
            leaves[i].grad = None
        _check_gradients(fn, leaves, checked, eps, atol, rtol)
    finally:
        for i, grad in caller_grads.items():
            leaves[i].grad = grad
    return True


def _check_gradients(
    fn: Callable[..., Any], leaves: list[Any], checked: list[int], eps: float, atol: float,
    rtol: float,
) -> None:  # fmt: skip
    """The comparison itself: backward once, then two evaluations of fn per element."""
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
    analytics = {i: np.zeros_like(leaves[i].data) if leaves[i].grad is None
                 else np.array(leaves[i].grad) for i in checked}  # fmt: skip

    for i in checked:
        x, analytic = leaves[i], analytics[i]
        numeric = np.zeros_like(x.data)
        with no_grad():
            for index in np.ndindex(x.shape):
                original = x.data[index]
                try:
                    x.data[index] = original + eps
                    plus = float(weighted_sum().data)
                    x.data[index] = original - eps
                    minus = float(weighted_sum().data)
                finally:
                    x.data[index] = original
                numeric[index] = (plus - minus) / (2 * eps)
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


def _outputs(result: Any) -> list[Tensor]:
    """fn's result as a list of tensors: a tuple or list of outputs, or a single one."""
    results = result if isinstance(result, (tuple, list)) else [result]
    return [r if isinstance(r, Tensor) else Tensor(np.asarray(r, np.float64)) for r in results]
