"""Optimizers, a learning-rate schedule and gradient clipping, following PyTorch's rules.

An optimizer holds the parameters (in groups that may differ in learning rate or weight
decay), reads each `.grad` in `step()`, and updates `.data` in place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad.tensor import Tensor


class Optimizer:
    """Base class: parameter groups, `zero_grad()`, `step()` and a saveable state."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Tensor) or not p.requires_grad:
                    raise TypeError(
                        f"{type(self).__name__} can only optimize tensors that require grad"
                    )
            self.param_groups.append(group)
        self.state: dict[int, dict[str, Any]] = {}  # by position of the parameter
        self.defaults = defaults

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
        for index, group, p in self._indexed_params():
            if p.grad is not None:
                self.update(p.data, p.grad, self.state.setdefault(index, {}), group)

    def update(self, data: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters of each group and the per-parameter buffers (for exact resume)."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        return {"param_groups": groups, "state": {i: dict(s) for i, s in self.state.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"optimizer state has {len(groups)} parameter groups, "
                f"this optimizer {len(self.param_groups)}"
            )
        for group, saved in zip(self.param_groups, groups):
            group.update(saved)
        shapes = {i: p.shape for i, _, p in self._indexed_params()}
        self.state = {}
        for i, s in state_dict["state"].items():
            i = int(i)
            if i not in shapes:
                raise ValueError(f"optimizer state for parameter {i}, but there are {len(shapes)}")
            for name, value in s.items():
                if isinstance(value, np.ndarray) and value.shape != shapes[i]:
                    raise ValueError(
                        f"optimizer state '{name}' of parameter {i} has shape {value.shape}, "
                        f"the parameter {shapes[i]}"
                    )
            self.state[i] = {
                k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()
            }


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
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: lr={lr}, momentum={momentum}, weight_decay={weight_decay} must be >= 0"
            )
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        dampening=dampening, nesterov=nesterov)  # fmt: skip
        super().__init__(params, defaults)

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
    `weight_decay` adds wd * p to the gradient (L2), as PyTorch's Adam does."""

    decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or eps < 0:
            raise ValueError(f"{type(self).__name__}: invalid lr={lr}, betas={betas} or eps={eps}")
        super().__init__(
            params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        )

    def update(self, data, grad, state, group):
        lr, (beta1, beta2), eps, wd = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        if wd and self.decoupled:
            data *= 1 - lr * wd
        elif wd:
            grad = grad + wd * data
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        update = np.sqrt(v)  # one fresh array, reused in place for the whole update
        update /= math.sqrt(1 - beta2**t)
        update += eps
        np.divide(m, update, out=update)
        update *= lr / (1 - beta1**t)
        data -= update


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
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


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
        if warmup_steps < 0 or total_steps < warmup_steps:
            raise ValueError(
                "WarmupCosine: need 0 <= warmup_steps <= total_steps, "
                f"got {warmup_steps} and {total_steps}"
            )
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


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most `max_norm`.
    Returns the norm before clipping (worth logging: spikes show instability)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= scale
    return total
