"""Fused functions: whole formulas with a closed-form backward.

Each could be written from primitive ops (the tests do exactly that and compare), but one
node with a hand-derived backward is faster and uses less memory than the chain of small
nodes, and its derivative reads as the formula it is. Where a faster NumPy form of a step
pays on large arrays, the Function calls it in one line from `minigrad/_fast.py`, which
keeps the plain form beside it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import _checks, _fast
from minigrad._erf import erf
from minigrad._fast import exp_and_sum  # noqa: F401  (importable from here, as before)
from minigrad.ops import ReLU
from minigrad.tensor import Function, Tensor


def softmax_array(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis`, on NumPy arrays.

    exp is taken of x - c, with c constant along the axis (the row's maximum, or 0 where exp
    cannot overflow), which leaves the ratio unchanged. A row all -inf (every key masked)
    gives zeros instead of NaN, and a row holding +inf gives NaN there and 0 elsewhere
    (PyTorch: NaN throughout).
    """
    e, total, _ = _fast.exp_and_sum(x, axis)  # exp(x - c) and its sum along the axis
    e /= np.where(total == 0, np.ones((), total.dtype), total)  # an all -inf row: 0 / 1
    return e


class Softmax(Function):
    """y = exp(x) / sum(exp(x));  dL/dx = y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx, x, axis):
        y = softmax_array(x, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        grad_x = grad - _fast.dot_along(grad, y, ctx.axis)  # g - sum(g * y)
        grad_x *= y
        return grad_x


class LogSoftmax(Function):
    """y = x - log(sum(exp(x)));  dL/dx = g - softmax(x) * sum(g)."""

    @staticmethod
    def forward(ctx, x, axis):
        e, total, c = _fast.exp_and_sum(x, axis, always_shift=True)  # exp(x - c), c = max
        ctx.save_for_backward(e, total)
        ctx.axis = axis
        y = x - c
        y -= np.log(total)
        return y

    @staticmethod
    def backward(ctx, grad):
        e, total = ctx.saved
        return grad - e * (_fast.sum_along(grad, ctx.axis) / total)  # softmax(x) = e / total


class LogSumExp(Function):
    """y = log(sum(exp(x))) over `axis`;  dy/dx = exp(x - y) = softmax(x)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        e, total, c = _fast.exp_and_sum(x, axis)  # exp(x - c) and its sum
        y = np.log(total) + c
        ctx.save_for_backward(e, total)
        ctx.axis = axis
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        e, total = ctx.saved
        return e * (grad.reshape(total.shape) / total)  # total keeps the summed axes


class CrossEntropy(Function):
    """L = mean over kept rows of -log softmax(logits)[target];
    dL/dlogits = (softmax(logits) - onehot(target)) / n_kept, zero on ignored rows."""

    @staticmethod
    def forward(ctx, logits, targets, keep):
        logits2 = logits.reshape(-1, logits.shape[-1])  # (N, C)
        targets1 = np.where(keep, targets, 0).reshape(-1)  # (N,), ignored rows read class 0
        rows = np.arange(len(targets1))
        e, total, c = _fast.exp_and_sum(logits2, always_shift=True)  # (N, C), (N, 1), (N, 1)
        nll = np.log(total[:, 0]) - (logits2[rows, targets1] - c[:, 0])  # -log softmax[target]
        keep1 = keep.reshape(-1)  # (N,)
        n_kept = max(int(keep1.sum()), 1)
        ctx.save_for_backward(e, total, targets1, keep1)
        ctx.shape, ctx.n_kept = logits.shape, n_kept
        return np.asarray((nll * keep1).sum() / n_kept, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        e, total, targets, keep = ctx.saved
        scale = ((grad / ctx.n_kept) * keep[:, None]).astype(e.dtype)  # (N, 1)
        gx = e * (scale / total)  # softmax * scale
        gx[np.arange(len(targets)), targets] -= scale[:, 0]  # minus onehot * scale
        return gx.reshape(ctx.shape)


_INV_SQRT_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class GELU(Function):
    """Exact:  y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 the normal CDF;
           dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) its density.
    Tanh:  y = x s, s = (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3);
           dy/dx = s + x ds/dx = s (1 + (1 - s) r), since ds/du = 2 s (1 - s), with
           r = 2 x du/dx = 2 sqrt(2/pi) x (1 + 3 * 0.044715 x^2).
    """

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        if approximate == "tanh":  # the backward computes s again: cheaper than storing it
            ctx.save_for_backward(x)
            return _fast.tanh_gelu(x)  # x s, s = (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
        s = 0.5 * (1 + erf(x * _INV_SQRT_2))  # Phi(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        if ctx.approximate == "tanh":
            (x,) = ctx.saved
            return _fast.tanh_gelu_grad(grad, x)  # grad * s * (1 + (1 - s) * r)
        x, s = ctx.saved
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * (x * x))  # phi(x)
        return grad * (s + x * pdf)


class LayerNorm(Function):
    """y = xhat * w + b, with xhat = (x - mean) / sqrt(var + eps) over the last axis.

    With gh = g * w:  dL/dx = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps),
    dL/dw = sum(g * xhat),  dL/db = sum(g), these two sums over every axis but the last.
    Without w and b, y = xhat and gh = g.
    """

    @staticmethod
    def forward(ctx, x, *weight_and_bias, eps):
        n = x.shape[-1]
        centered = x - _fast.sum_last_axis(x) / n  # x - mean, (..., C)
        var = _fast.dot_along(centered, centered, -1) / n  # mean(centered**2), (..., 1)
        rstd = 1 / np.sqrt(var + eps)
        ctx.save_for_backward(centered, rstd, *weight_and_bias)
        return _fast.scale_and_shift(centered, rstd, *weight_and_bias)  # xhat * w + b

    @staticmethod
    def backward(ctx, grad):
        centered, rstd, *weight_and_bias = ctx.saved  # xhat = centered * rstd
        grad_x, grad_w = _fast.layer_norm_backward(grad, centered, rstd, *weight_and_bias[:1])
        if len(weight_and_bias) < 2:
            return (grad_x, grad_w) if weight_and_bias else grad_x
        return grad_x, grad_w, _fast.sum_leading_axes(grad)  # dL/db = sum(g)


class Linear(Function):
    """y = x W^T + b with W of shape (out, in), as in PyTorch;
    dL/dx = g W,  dL/dW = g^T x (summed over all leading axes),  dL/db = sum(g)."""

    @staticmethod
    def forward(ctx, x, weight, *bias):
        ctx.save_for_backward(x, weight)
        x2 = x.reshape(-1, x.shape[-1])  # (N, in): every row in one matrix product
        y = (x2 @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
        if bias:
            y += bias[0]
            ctx.bias_is_a_row = bias[0].shape == y.shape[-1:]  # (out,), the usual bias
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        g2 = grad.reshape(-1, grad.shape[-1])  # (N, out)
        gx = (g2 @ weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        if len(ctx.needs_input_grad) == 2:
            return gx, gw
        if not ctx.needs_input_grad[2]:
            return gx, gw, None
        return gx, gw, (_fast.sum_leading_axes(grad) if ctx.bias_is_a_row else grad)  # sum(g)


class Embedding(Function):
    """y = W[ids] (a row per id);  dL/dW[i] = sum of the gradients of the rows that read i."""

    @staticmethod
    def forward(ctx, weight, ids):
        ctx.shape, ctx.ids = weight.shape, ids
        return weight[ids]

    @staticmethod
    def backward(ctx, grad):
        rows = grad.reshape(-1, ctx.shape[1])  # (N, dim), one per id
        return _fast.scatter_add_rows(ctx.ids.reshape(-1), rows, ctx.shape[0])  # (num, dim)


class Dropout(Function):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p);  dL/dx = g * mask / (1 - p)."""

    @staticmethod
    def forward(ctx, x, p, rng):
        keep = rng.random(x.shape) >= p
        scale = keep * np.asarray(1 / (1 - p), dtype=x.dtype)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved
        return grad * scale


# --------------------------------------------------------------------- public functions
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Probabilities along `axis`; a row of all -inf gives zeros."""
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)), computed without forming the softmax (no log of a tiny number)."""
    return LogSoftmax.apply(x, axis=axis)


def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) along `axis`, shifted by the max so exp cannot overflow."""
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def cross_entropy(logits: Tensor, targets: Any, ignore_index: int | None = None) -> Tensor:
    """Mean negative log-likelihood of integer `targets` under softmax(`logits`).

    logits (..., C), targets (...) of class ids. Targets equal to `ignore_index` (padding)
    are left out of the mean; with none kept the loss is 0 (PyTorch gives NaN).
    """
    targets, keep = _checks.class_targets(logits.shape, targets, ignore_index)
    return CrossEntropy.apply(logits, targets=targets, keep=keep)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * P(X <= x) for a standard normal X.
    `approximate="tanh"` is the GPT-2 formula, `"none"` the exact one (BERT)."""
    message = "gelu: approximate must be 'none' or 'tanh', got {!r}"
    _checks.require(approximate in ("none", "tanh"), message, approximate)
    return GELU.apply(x, approximate=approximate)


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ReLU.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p), so the expected
    value is unchanged; the identity when not training. Needs a generator when it draws."""
    _checks.probability(p, "dropout probability")
    if not training or p == 0:
        return x
    needs_rng = "dropout in training mode needs rng=np.random.default_rng(seed)"
    _checks.require(rng is not None, needs_rng)
    return Dropout.apply(x, p=p, rng=rng)


def layer_norm(
    x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Normalize the last axis to mean 0 and variance 1, then scale by weight, shift by bias."""
    _checks.layer_norm_arguments(x, weight, bias)
    params = [p for p in (weight, bias) if p is not None]
    return LayerNorm.apply(x, *params, eps=float(eps))  # a NumPy float64 would widen float32


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight of shape (out_features, in_features)."""
    _checks.linear_arguments(x, weight, bias)
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)


def embedding(ids: Any, weight: Tensor) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by integer `ids` (...) -> (..., dim)."""
    ids = _checks.integers(ids, "embedding: ids")
    _checks.ids_in_range(ids, weight.shape[0], "embedding: id {} outside the table's range [0, {})")
    return Embedding.apply(weight, ids=ids)
