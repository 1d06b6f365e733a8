"""Scaled dot-product attention's forward and backward in few passes over the scores.

`attend_plain` / `attend_backward_plain` are the formulas as `ScaledDotProductAttention`
states them: S = Q K^T s (s = 1 / sqrt(d_k), -inf where masked), P = softmax(S),
P' = P * keep (dropout), Y = P' V; and back: dV = P'^T G, dP = (G V^T) * keep,
dS = P (dP - rowsum(dP P)), dQ = dS K s, dK = dS^T Q s.

`attend` / `attend_backward` compute the same without ever forming P. Each pass over a
(T_q, T_k) array costs as much as a pass over the whole activation of an FFN, while the
(T_q, d) arrays are d / T_k of that, so the row normalization moves to the small side:
with E = exp(S - c) and z = rowsum(E), P = E / z and

    Y  = (E' V) / z                          E' = E * keep
    dV = E'^T (G / z)
    D  = ((G s / z) V^T) * keep              (= s dP / z)
    dS s = E (D - rowsum(D E) / z)           (rowsum(dP P) = rowsum(D E) / s)

so the forward makes five passes over the scores (scale, mask, the check that exp cannot
overflow, exp, its row sums), two of them in place, and the backward three (rowsum(D E), the
subtraction, the product), where the plain forms make six and five, nearly all into fresh
arrays. They save E and z, the same memory as P.

A causal attention is computed in blocks of CAUSAL_BLOCK queries once it has two: block
rows a:b see keys up to b only, so its products and passes stop there, and the upper
triangle, half of every (T, T) array, is mostly never computed nor stored (the backward
adds each block's dK and dV into the keys it saw). At T = 256, 3/8 of the work goes.
tests/transformer/test_fast_attention.py checks that the pairs agree. Outputs may be
written into given arrays (`out=`), such as strided views of the heads inside a packed
(B, T, 3C) array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import _fast
from minigrad.functional import softmax_array

CAUSAL_BLOCK = 64  # query rows per block of a causal attention long enough to cut


def attend(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, mask: Any = None,
    causal: bool = False, keep: np.ndarray | None = None, out: np.ndarray | None = None,
) -> tuple[np.ndarray, list]:  # fmt: skip
    """Y = softmax(Q K^T scale, -inf where hidden) * keep @ V, and what the backward needs.

    Hidden: where `mask` is False, and with `causal` every key after the query's position
    (the T_q queries are the last T_q of the T_k positions). Returns Y and a list of
    (first row, row after the last, E, z) per block of queries: E = exp(S - c) over the keys
    the block saw and z its row sums (1 where every key is hidden: there E and Y are 0).
    """
    T_q, T_k = q.shape[-2], k.shape[-2]
    if causal and (mask is not None or keep is not None or T_q < 2 * CAUSAL_BLOCK):
        visible = np.tri(T_q, T_k, k=T_k - T_q, dtype=bool)  # (T_q, T_k)
        mask, causal = (visible if mask is None else mask & visible), False
    if not causal:
        y, e, total = _attend_rows(q, k, v, scale, mask, keep, out)
        return y, [(0, T_q, e, total)]
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    y = np.empty((*batch, T_q, v.shape[-1]), q.dtype) if out is None else out
    saved = []
    for start in range(0, T_q, CAUSAL_BLOCK):  # query rows start:stop see keys :seen
        stop = min(start + CAUSAL_BLOCK, T_q)
        seen = T_k - T_q + stop
        in_view = np.tri(stop - start, seen, k=seen - stop + start, dtype=bool)
        rows = slice(start, stop)
        _, e, total = _attend_rows(q[..., rows, :], k[..., :seen, :], v[..., :seen, :], scale,
                                   in_view, out=y[..., rows, :])  # fmt: skip
        saved.append((start, stop, e, total))
    return y, saved


def attend_backward(
    grad: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray, saved: list, scale: float,
    keep: np.ndarray | None = None, needs: tuple[bool, bool, bool] = (True, True, True),
    out: tuple = (None, None, None),
) -> tuple[Any, Any, Any]:  # fmt: skip
    """(dQ, dK, dV) from G = dL/dY and what `attend` saved; None where `needs` says no."""
    if len(saved) == 1:
        _, _, e, total = saved[0]
        return _attend_rows_backward(grad, q, k, v, e, total, scale, keep, needs, out)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])  # the gradients' batch axes
    grad_q, grad_k, grad_v = (
        np.zeros((*batch, *a.shape[-2:]), grad.dtype) if o is None else o
        for a, o in zip((q, k, v), out)
    )
    for given in out[1:]:
        if given is not None:
            given[...] = 0  # the blocks add into dK and dV
    T_q, T_k = q.shape[-2], k.shape[-2]
    for start, stop, e, total in saved:
        seen, rows = T_k - T_q + stop, slice(start, stop)
        _, part_k, part_v = _attend_rows_backward(
            grad[..., rows, :], q[..., rows, :], k[..., :seen, :], v[..., :seen, :], e, total,
            scale, out=(grad_q[..., rows, :], None, None),
        )  # fmt: skip
        grad_k[..., :seen, :] += part_k
        grad_v[..., :seen, :] += part_v
    return tuple(g if need else None for g, need in zip((grad_q, grad_k, grad_v), needs))


def attention_weights(saved: list, T_k: int) -> np.ndarray:
    """P (..., T_q, T_k) from what `attend` saved, zeros for the keys a block skipped."""
    *batch, _, _ = saved[0][2].shape
    weights = np.zeros((*batch, saved[-1][1], T_k), saved[0][2].dtype)
    for start, stop, e, total in saved:
        weights[..., start:stop, : e.shape[-1]] = e / total
    return weights


def _attend_rows(q, k, v, scale, mask=None, keep=None, out=None):
    """(Y, E, z): E = exp(S - c) (..., T_q, T_k) and z (..., T_q, 1) its row sums (1 for a
    row with every key masked, whose E and Y are then 0)."""
    scores = q @ np.swapaxes(k, -1, -2)  # (..., T_q, T_k)
    scores *= scale
    if mask is not None:
        np.copyto(scores, np.array(-np.inf, scores.dtype), where=~mask)
    e, total, _ = _fast.exp_and_sum(scores)  # exp(S - c), (..., T_q, T_k), and its row sums
    total = np.where(total == 0, 1, total)  # a fully masked row: E = 0, so Y = 0
    y = np.matmul(e if keep is None else e * keep, v, out=out)  # (..., T_q, d_v)
    y /= total
    return y, e, total


def _attend_rows_backward(grad, q, k, v, e, total, scale, keep=None, needs=(True,) * 3,
                          out=(None,) * 3):  # fmt: skip
    grad_q = grad_k = grad_v = None
    g = grad / total  # G / z, (..., T_q, d_v)
    if needs[2]:
        dropped = e if keep is None else e * keep
        grad_v = np.matmul(np.swapaxes(dropped, -1, -2), g, out=out[2])  # E'^T (G / z)
    if not (needs[0] or needs[1]):
        return grad_q, grad_k, grad_v
    g *= scale
    d = g @ np.swapaxes(v, -1, -2)  # s dP / z, (..., T_q, T_k)
    if keep is not None:
        d *= keep
    d -= _fast.dot_along(d, e, -1) / total  # D - rowsum(D E) / z
    d *= e  # s dS
    if needs[0]:
        grad_q = np.matmul(d, k, out=out[0])
    if needs[1]:
        grad_k = np.matmul(np.swapaxes(d, -1, -2), q, out=out[1])
    return grad_q, grad_k, grad_v


def attend_plain(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, mask: Any = None,
    causal: bool = False, keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(Y, P): the forward as the formula reads."""
    scores = (q @ np.swapaxes(k, -1, -2)) * scale  # (..., T_q, T_k)
    if causal:  # query i, at position T_k - T_q + i, sees keys up to there
        T_q, T_k = scores.shape[-2:]
        visible = np.tri(T_q, T_k, k=T_k - T_q, dtype=bool)
        mask = visible if mask is None else mask & visible
    if mask is not None:
        scores = np.where(mask, scores, np.array(-np.inf, scores.dtype))
    weights = softmax_array(scores)  # all-masked rows give 0
    dropped = weights if keep is None else weights * keep
    return dropped @ v, weights


def attend_backward_plain(
    grad: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray, weights: np.ndarray,
    scale: float, keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(dQ, dK, dV) from G and P, as the formula reads."""
    dropped = weights if keep is None else weights * keep
    grad_v = np.swapaxes(dropped, -1, -2) @ grad
    grad_weights = grad @ np.swapaxes(v, -1, -2)  # dL/dP'
    if keep is not None:
        grad_weights = grad_weights * keep  # dL/dP
    grad_scores = weights * (grad_weights - (grad_weights * weights).sum(axis=-1, keepdims=True))
    grad_scores = grad_scores * scale
    return grad_scores @ k, np.swapaxes(grad_scores, -1, -2) @ q, grad_v
