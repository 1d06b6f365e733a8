"""Argument checks for minigrad's public functions, one function per kind of check.

Each raises an error that names the problem and the bad value, so that a public function
checks an argument in one line and the formulas around it stay in view.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def integers(value: Any, what: str) -> np.ndarray:
    """`value` (an array-like or a Tensor) as an integer array, or a TypeError."""
    array = np.asarray(getattr(value, "data", value))
    if array.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {array.dtype}")
    return array


def ids_in_range(ids: np.ndarray, n: int, message: str) -> None:
    """An IndexError, `message.format(bad_id, n)`, unless every id lies in [0, n)."""
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise IndexError(message.format(ids[(ids < 0) | (ids >= n)].flat[0], n))


def probability(p: float, what: str) -> None:
    """A ValueError unless 0 <= p < 1 (a drop probability of 1 would divide by 0)."""
    if not 0 <= p < 1:
        raise ValueError(f"{what} must be in [0, 1), got {p}")
