"""Argument checks for minigrad's public functions, one function per kind of check.

Each raises an error that names the problem and the bad value, so that a public function
checks an argument in one line and the formulas around it stay in view.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.tensor import Tensor, broadcasts_to


def require(ok: bool, message: str, *values: Any) -> None:
    """A ValueError, `message.format(*values)`, unless `ok`: a shape or a setting that does not
    fit. The message is only formatted when it is raised."""
    if not ok:
        raise ValueError(message.format(*values))


def integers(value: Any, what: str) -> np.ndarray:
    """`value` (an array-like or a Tensor) as an integer array, or a TypeError."""
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {array.dtype}")
    return array


def ids_in_range(ids: np.ndarray, n: int, message: str) -> None:
    """An IndexError, `message.format(bad_id, n)`, unless every id lies in [0, n)."""
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise IndexError(message.format(ids[(ids < 0) | (ids >= n)].flat[0], n))


def probability(p: float, what: str) -> None:
    """A ValueError unless 0 <= p < 1 (a drop probability of 1 would divide by 0)."""
    require(0 <= p < 1, "{} must be in [0, 1), got {}", what, p)


def class_targets(
    logits_shape: tuple[int, ...], targets: Any, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Class ids for logits (..., C): an integer array of C's leading shape (in any shape
    with as many ids), each kept id in [0, C); returns it and the mask of kept rows."""
    targets = integers(targets, "cross_entropy: targets (class ids)")
    expected = logits_shape[:-1]
    if targets.size != math.prod(expected):
        raise ValueError(
            f"cross_entropy: logits of shape {logits_shape} need targets of shape {expected}, "
            f"got {targets.shape}"
        )
    keep = np.ones(targets.shape, bool) if ignore_index is None else targets != ignore_index
    message = "cross_entropy: target {} outside the classes [0, {})"
    ids_in_range(targets[keep], logits_shape[-1], message)
    return targets, keep


def layer_norm_arguments(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> None:
    """x has a last axis, and weight and bias (a bias only with a weight) are of its size."""
    if x.ndim == 0:
        raise ValueError("layer_norm normalizes the last axis: a 0-d tensor has none")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != x.shape[-1:]:
            raise ValueError(f"layer_norm: {name} of shape {p.shape} != {x.shape[-1:]}")
    if weight is None and bias is not None:
        raise ValueError("layer_norm: a bias without a weight is not supported")


def linear_arguments(x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    """weight is (out, in), x (..., in), and bias broadcasts to the output (..., out)."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be (out, in), got shape {weight.shape}")
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} "
            f"(expects last axis {weight.shape[1]})"
        )
    out_shape = (*x.shape[:-1], weight.shape[0])
    if bias is not None and not broadcasts_to(bias.shape, out_shape):
        raise ValueError(
            f"linear: bias of shape {bias.shape} does not broadcast to the output's shape "
            f"{out_shape}"
        )


def non_negative(owner: str, group: dict[str, Any], *names: str) -> None:
    """A ValueError naming the first of `names` whose value in `group` is negative or NaN."""
    for name in names:  # `>= 0` is False for NaN too
        require(group[name] >= 0, "{}: invalid {}={}, need >= 0", owner, name, group[name])


def grad_shape(owner: str, index: int, param: Tensor) -> None:
    """A ValueError unless `param.grad` has the parameter's shape: a gradient that merely
    broadcasts to it would be applied silently."""
    if param.grad.shape != param.shape:
        raise ValueError(
            f"{owner}: parameter {index} has shape {param.shape} "
            f"but its grad has shape {param.grad.shape}"
        )


def parameter_groups(owner: str, params: Any, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """An optimizer's `params` (tensors, or dicts of a "params" list and hyper-parameters)
    as a list of groups with the defaults filled in. Refuses a single tensor (iterable over
    its rows), an empty list, a mix of tensors and dicts, anything but tensors in a group,
    and a tensor listed twice (it would be updated twice per step)."""
    if isinstance(params, Tensor):
        raise TypeError(
            "params argument given to the optimizer should be an iterable of Tensors "
            f"or dicts, but got {type(params).__name__}"
        )
    params = list(params)
    if not params:
        raise ValueError(f"{owner} got an empty parameter list")
    groups = params if isinstance(params[0], dict) else [{"params": params}]
    seen: set[int] = set()
    result = []
    for group in groups:
        if not isinstance(group, dict):
            raise TypeError(
                f"{owner}: parameter groups must all be dicts, got {type(group).__name__}"
            )
        tensors = group["params"]
        group = {
            **defaults,
            **group,
            "params": [tensors] if isinstance(tensors, Tensor) else list(tensors),
        }
        for p in group["params"]:
            if not isinstance(p, Tensor):
                kind = type(p).__name__
                raise TypeError(
                    f"{owner} can only optimize Tensors, but one of the params is {kind}"
                )
            if id(p) in seen:
                raise ValueError(
                    f"{owner}: some parameters appear more than once in the parameter groups "
                    f"(one of shape {p.shape}); each would be updated twice per step"
                )
            seen.add(id(p))
        result.append(group)
    return result


def optimizer_state(
    saved: dict[str, Any], groups: list[dict[str, Any]]
) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """A saved optimizer `state_dict()` read against this optimizer's `groups`: the buffers
    keyed by the position of their parameter here, each array checked against the
    parameter's shape and cast to its dtype, and each group's saved hyper-parameters.

    The saved groups list their parameters by id, as PyTorch's do; ids map to positions here
    group by group, so the groups must match in number and size."""
    saved_groups = saved["param_groups"]
    if len(saved_groups) != len(groups):
        raise ValueError(
            f"optimizer state has {len(saved_groups)} parameter groups, "
            f"this optimizer {len(groups)}"
        )
    params = [p for group in groups for p in group["params"]]
    position: dict[int, int] = {}  # saved parameter id -> position here
    for n, (group, saved_group) in enumerate(zip(groups, saved_groups)):
        start = len(position)
        saved_ids = list(saved_group.get("params", range(start, start + len(group["params"]))))
        if len(saved_ids) != len(group["params"]):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                f"optimizer's group: group {n} has {len(saved_ids)} parameters saved, "
                f"{len(group['params'])} here"
            )
        for i, saved_id in enumerate(saved_ids, start):
            if int(saved_id) in position:
                raise ValueError(f"loaded state dict lists parameter id {saved_id} twice")
            position[int(saved_id)] = i
    state: dict[int, dict[str, Any]] = {}
    for saved_id, buffers in saved["state"].items():
        if int(saved_id) not in position:
            raise ValueError(
                f"optimizer state for parameter {saved_id}, which is in none of the saved groups"
            )
        i = position[int(saved_id)]
        state[i] = {name: _buffer(name, value, i, params[i]) for name, value in buffers.items()}
    hyperparameters = [{k: v for k, v in g.items() if k != "params"} for g in saved_groups]
    return state, hyperparameters


def _buffer(name: str, value: Any, index: int, param: Tensor) -> Any:
    """A saved optimizer buffer as the parameter needs it: the step count as an int, an
    array of the parameter's shape as a copy in the parameter's dtype."""
    if name == "step":
        return int(value)
    if not isinstance(value, np.ndarray):
        return value
    if value.shape != param.shape:
        raise ValueError(
            f"optimizer state '{name}' of parameter {index} has shape {value.shape}, "
            f"the parameter {param.shape}"
        )
    return value.astype(param.dtype)
