"""Optimizers, a learning-rate schedule and gradient clipping, following PyTorch's rules.

An optimizer holds the parameters (in groups that may differ in learning rate or weight
decay), reads each `.grad` in `step()`, and updates `.data` in place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad import _checks, _fast
from minigrad.tensor import Tensor


class Optimizer:
    """Base class: parameter groups, `zero_grad()`, `step()` and a saveable state."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.param_groups = _checks.parameter_groups(type(self).__name__, params, defaults)
        for group in self.param_groups:
            self.check_hyperparameters(group)
        self.state: dict[int, dict[str, Any]] = {}  # by position of the parameter
        self.defaults = defaults

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        """Raise ValueError for a group's hyper-parameter outside its range."""

    def _indexed_params(self) -> Iterable[tuple[int, dict[str, Any], Tensor]]:
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield index, group, p
                index += 1

    def zero_grad(self) -> None:
        for _, _, p in self._indexed_params():
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a grad; frozen ones (grad None) are skipped."""
        for index, group, p in self._indexed_params():
            if p.grad is None:
                continue
            _checks.grad_shape(type(self).__name__, index, p)
            self.update(p.data, p.grad, self.state.setdefault(index, {}), group)

    def update(self, data: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters of each group, the positions of its parameters (PyTorch's
        layout) and the per-parameter buffers (for exact resume)."""
        groups, start = [], 0
        for g in self.param_groups:
            saved = {k: v for k, v in g.items() if k != "params"}
            saved["params"] = list(range(start, start + len(g["params"])))
            start += len(g["params"])
            groups.append(saved)
        return {"param_groups": groups, "state": {i: dict(s) for i, s in self.state.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a `state_dict()`: groups must match in number and size, and each buffer is
        checked against its parameter's shape and cast to its dtype. Nothing changes on error."""
        state, hyperparameters = _checks.optimizer_state(state_dict, self.param_groups)
        for group, saved in zip(self.param_groups, hyperparameters):
            self.check_hyperparameters({**group, **saved})
        for group, saved in zip(self.param_groups, hyperparameters):
            group.update(saved)
        self.state = state


class SGD(Optimizer):
    """Stochastic gradient descent with momentum:  g += wd * p;  v = mu v + (1 - dampening) g
    (v = g on the first step);  g = g + mu v if nesterov else v;  p -= lr g."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        dampening=dampening, nesterov=nesterov)  # fmt: skip
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        _checks.non_negative("SGD", group, "lr", "momentum", "dampening", "weight_decay")
        momentum, dampening = group["momentum"], group["dampening"]
        nesterov_ok = not group["nesterov"] or (momentum > 0 and dampening == 0)
        message = "SGD: Nesterov needs momentum > 0 and dampening 0, got momentum={}, dampening={}"
        _checks.require(nesterov_ok, message, momentum, dampening)

    def update(self, data, grad, state, group):
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * data
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(grad, dtype=data.dtype)
            else:
                buf = state["momentum_buffer"]
                buf *= mu
                buf += (1 - group["dampening"]) * grad
            buf = state["momentum_buffer"]
            grad = grad + mu * buf if group["nesterov"] else buf
        data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba):  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    `weight_decay` adds wd * p to the gradient (L2), as PyTorch's Adam does. `amsgrad`
    (Reddi et al.) divides by the running maximum of v instead, so that a parameter's
    step cannot grow again when its recent gradients shrink."""

    decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad)  # fmt: skip
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        name = type(self).__name__
        _checks.non_negative(name, group, "lr", "eps", "weight_decay")
        for i, beta in enumerate(group["betas"]):
            _checks.require(
                0 <= beta < 1, "{}: invalid betas[{}]={}, need 0 <= beta < 1", name, i, beta
            )

    def update(self, data, grad, state, group):
        lr, (beta1, beta2), eps, wd = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        if wd and not self.decoupled:
            grad = grad + wd * data
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(data)
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        max_v = state["max_exp_avg_sq"] if group["amsgrad"] else None
        decay = 1 - lr * wd if self.decoupled else 1.0  # AdamW: p *= 1 - lr wd first
        _fast.adam_step(data, grad, m, v, max_v, lr, beta1, beta2, eps, state["step"], decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * wd before the
    Adam step, so decay does not pass through the adaptive scaling."""

    decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


def warmup_cosine_lr(
    step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0
) -> float:
    """The learning rate after `step` completed steps: a linear rise to `max_lr` over
    `warmup_steps` (step + 1) / warmup_steps, then half a cosine down to `min_lr` at
    `total_steps`, and `min_lr` after that."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


class WarmupCosine:
    """Sets each group's lr by `warmup_cosine_lr`, from the group's initial lr as `max_lr`.
    Call `step()` after each `optimizer.step()`."""

    def __init__(
        self, optimizer: Optimizer, warmup_steps: int, total_steps: int, min_lr: float = 0.0
    ) -> None:
        message = "WarmupCosine: need 0 <= warmup_steps <= total_steps, got {} and {}"
        _checks.require(0 <= warmup_steps <= total_steps, message, warmup_steps, total_steps)
        self.optimizer = optimizer
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = warmup_cosine_lr(
                self.last_step, base, self.warmup_steps, self.total_steps, self.min_lr
            )

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def get_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_step, self.base_lrs = int(state["last_step"]), list(state["base_lrs"])
        self._apply()


def clip_grad_norm(
    params: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so that their global `norm_type`-norm (the norm of all
    of them as one vector; inf for the largest |g|) is at most `max_norm`.
    Returns the norm before clipping (worth logging: spikes show instability).

    A NaN or inf norm cannot be clipped: it raises RuntimeError if `error_if_nonfinite`,
    and otherwise scales as PyTorch does, by max_norm / inf = 0 or by NaN (every grad NaN).
    """
    _checks.require(
        norm_type >= 1, "clip_grad_norm: norm_type={} is not a norm, need >= 1", norm_type
    )
    params = [params] if isinstance(params, Tensor) else params
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norms = [float(np.linalg.norm(g.ravel(), ord=norm_type)) for g in grads if g.size]
    total = float(np.linalg.norm(norms, ord=norm_type)) if norms else 0.0
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm: the total norm of order {norm_type} of the gradients is {total}, "
            "so it cannot be clipped (pass error_if_nonfinite=False to scale by it anyway)"
        )
    scale = max_norm / (total + 1e-6)
    if not scale >= 1:  # also when the norm, and so the scale, is NaN
        for g in grads:
            g *= scale
    return total
