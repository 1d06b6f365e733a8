"""Fused functions: whole formulas with a closed-form backward.

Each could be written from primitive ops (the tests do exactly that and compare), but one
node with a hand-derived backward is faster and uses less memory than the chain of small
nodes, and its derivative reads as the formula it is.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from minigrad.ops import (
    ReLU,
    dot_last_axis,
    outer,
    sum_along,
    sum_last_axis,
    sum_leading_axes,
)
from minigrad.tensor import Function, Tensor, broadcasts_to


def exp_and_sum(
    x: np.ndarray, axis: Any = -1, log_domain: bool = False
) -> tuple[np.ndarray, np.ndarray, Any]:
    """e = exp(x - c) and its sum s along `axis` (kept), for a shift c constant along `axis`.

    Every c gives the same softmax e / s and log-sum-exp log(s) + c; c only has to keep exp
    in range. When no entry is large enough to overflow and no row sums to almost nothing,
    c = 0 serves and saves two passes (a max and a subtraction); otherwise c is the row's
    maximum, the textbook choice; an infinite maximum is replaced by 0, so that a row all
    -inf (every key masked) gives e = 0 and a row holding +inf a log-sum-exp of +inf.
    A caller in the log domain (`log_domain`: log_softmax, cross-entropy) always takes the
    row max: x - (log(s) + c) is then (x - c) - log(s), where an unshifted x - log(s)
    would cancel two large numbers and lose a small result, the loss of a confident guess.
    Returns e, s and c (0 or an array that broadcasts against s).
    """
    if x.dtype.kind == "f" and x.size and not log_domain:
        limit = _exp_safe_limit(x.dtype)
        if x.max() <= limit:  # NaN compares False and takes the textbook path
            e = np.exp(x)
            total = sum_along(e, axis)
            if total.min() >= np.exp(-limit):
                return e, total, 0
    shift = np.max(x, axis=axis, keepdims=True)
    shift = np.where(np.isinf(shift), np.zeros((), shift.dtype), shift)
    e = np.subtract(x, shift, out=np.empty_like(x))  # an array even when x is 0-d
    np.exp(e, out=e)
    return e, sum_along(e, axis), shift


@functools.cache
def _exp_safe_limit(dtype: np.dtype) -> float:
    """Half the log of the largest float: exp(x) of every x up to it, summed over up to
    exp(limit) terms, stays finite, and a row whose sum is above exp(-limit) keeps every
    probability above exp(-limit) in full precision."""
    return float(np.log(np.finfo(dtype).max)) / 2


def softmax_array(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis`, with exp kept in range (`exp_and_sum`);
    a row that is all -inf (every key masked) gives zeros instead of NaN, and a row holding
    +inf gives NaN there and 0 elsewhere (PyTorch: NaN throughout)."""
    e, total, _ = exp_and_sum(x, axis)
    e /= np.where(total == 0, np.ones((), total.dtype), total)  # in place: e is ours
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
        if y.ndim and ctx.axis in (-1, y.ndim - 1):
            gx = grad - dot_last_axis(grad, y)
        else:
            gx = grad - (grad * y).sum(axis=ctx.axis, keepdims=True)
        gx *= y
        return gx


class LogSoftmax(Function):
    """y = x - log(sum(exp(x)));  dL/dx = g - softmax(x) * sum(g)."""

    @staticmethod
    def forward(ctx, x, axis):
        e, total, shift = exp_and_sum(x, axis, log_domain=True)
        ctx.save_for_backward(e, total)
        ctx.axis = axis
        y = x - shift
        y -= np.log(total)
        return y

    @staticmethod
    def backward(ctx, grad):
        e, total = ctx.saved
        return grad - e * (sum_along(grad, ctx.axis) / total)  # minus softmax(x) * sum(g)


class LogSumExp(Function):
    """y = log(sum(exp(x))) over `axis`;  dy/dx = exp(x - y) = softmax(x)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        e, total, shift = exp_and_sum(x, axis)
        y = np.log(total) + shift
        ctx.save_for_backward(e, total)
        ctx.axis = axis
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        e, total = ctx.saved
        return e * (grad.reshape(total.shape) / total)  # total keeps the summed axes


class CrossEntropy(Function):
    """L = mean over kept targets of -log softmax(logits)[target];
    dL/dlogits = (softmax(logits) - onehot(target)) / n_kept, zero on ignored rows."""

    @staticmethod
    def forward(ctx, logits, targets, ignore_index):
        n_classes = logits.shape[-1]
        logits2 = logits.reshape(-1, n_classes)  # (N, C)
        targets1 = targets.reshape(-1)  # (N,)
        if targets1.shape[0] != logits2.shape[0]:
            raise ValueError(
                f"cross_entropy: logits of shape {logits.shape} need targets of shape "
                f"{logits.shape[:-1]}, got {targets.shape}"
            )
        keep = np.ones(targets1.shape, bool) if ignore_index is None else targets1 != ignore_index
        kept = targets1[keep]
        if kept.size and (kept.min() < 0 or kept.max() >= n_classes):
            bad = kept[(kept < 0) | (kept >= n_classes)][0]
            raise IndexError(f"cross_entropy: target {bad} outside the classes [0, {n_classes})")
        safe_targets = np.where(keep, targets1, 0)
        rows = np.arange(len(targets1))
        e, total, shift = exp_and_sum(logits2, log_domain=True)  # (N, C), (N, 1): e / total
        nll = np.log(total[:, 0]) - (logits2[rows, safe_targets] - shift[:, 0])  # (N,)
        n_kept = max(int(keep.sum()), 1)
        ctx.save_for_backward(e, total, safe_targets, keep)
        ctx.shape, ctx.n_kept = logits.shape, n_kept
        return np.asarray((nll * keep).sum() / n_kept, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        e, total, targets, keep = ctx.saved
        scale = ((grad / ctx.n_kept) * keep[:, None]).astype(e.dtype)  # (N, 1)
        gx = e * (scale / total)  # softmax * scale
        gx[np.arange(len(targets)), targets] -= scale[:, 0]  # minus onehot * scale
        return gx.reshape(ctx.shape)


# Cody (1969), "Rational Chebyshev approximations for the error function": near-minimax
# rational functions, accurate to double precision on three intervals of |x|.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)  # fmt: skip
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip


def erf(x: np.ndarray) -> np.ndarray:
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise.

    NumPy has none, so this evaluates Cody's rational approximations: erf directly for
    |x| <= 0.46875, otherwise erfc = 1 - erf as exp(-x^2) times a rational function.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    y = np.abs(x).ravel()  # in x's own precision: float32 stays float32 (the constants follow)
    result = np.empty_like(y)
    # The positions of each interval as index arrays: gathering and scattering with them is
    # several times faster than with boolean masks. NaN goes to the last interval.
    small = np.flatnonzero(y <= 0.46875)
    middle = np.flatnonzero((y > 0.46875) & (y <= 4.0))
    large = np.flatnonzero(~(y <= 4.0))

    ys = y[small]
    z = ys * ys
    num, den = _ERF_A[4] * z, z.copy()
    for a, b in zip(_ERF_A[:3], _ERF_B[:3]):  # Horner's rule, in place (no temporaries)
        num += a
        num *= z
        den += b
        den *= z
    result[small] = ys * (num + _ERF_A[3]) / (den + _ERF_B[3])

    ym = y[middle]
    num, den = _ERFC_C[8] * ym, ym.copy()
    for c, d in zip(_ERFC_C[:7], _ERFC_D[:7]):
        num += c
        num *= ym
        den += d
        den *= ym
    erfc = (num + _ERFC_C[7]) / (den + _ERFC_D[7])
    result[middle] = 1 - _exp_minus_square(ym) * erfc

    yl = np.minimum(y[large], 30.0)  # erf(30) is 1 to any precision; inf would give inf - inf
    z = 1 / (yl * yl)
    num, den = _ERFC_P[5] * z, z.copy()
    for p, q in zip(_ERFC_P[:4], _ERFC_Q[:4]):
        num += p
        num *= z
        den += q
        den *= z
    erfc = (1 / math.sqrt(math.pi) - z * (num + _ERFC_P[4]) / (den + _ERFC_Q[4])) / yl
    result[large] = 1 - _exp_minus_square(yl) * erfc

    return np.copysign(result.reshape(x.shape), x)


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """exp(-y^2) computed as exp(-r^2) exp(-(y - r)(y + r)) with r = y rounded down to 1/16,
    which keeps the full precision that a direct exp(-y*y) loses in the rounding of y*y."""
    r = np.floor(y * 16) / 16
    return np.exp(-r * r) * np.exp(-(y - r) * (y + r))


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class GELU(Function):
    """Exact:  y = x Phi(x) = x/2 (1 + erf(x / sqrt 2));  dy/dx = Phi(x) + x phi(x).
    Tanh:   y = x s,  s = (1 + tanh u) / 2 = sigmoid(2u),  u = sqrt(2/pi) (x + 0.044715 x^3);
            dy/dx = s + x ds/dx = s (1 + (1 - s) r),  since ds/du = 2 s (1 - s), with
            r = 2 x du/dx = 2 sqrt(2/pi) x (1 + 3 * 0.044715 x^2).
    """

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        if approximate == "tanh":
            # u = x (k + k a x^2), then s = (1 + tanh u) / 2, each step in place
            s = np.multiply(x, x, out=np.empty_like(x))  # an array even when x is 0-d
            s *= _SQRT_2_OVER_PI * 0.044715
            s += _SQRT_2_OVER_PI
            s *= x
            np.tanh(s, out=s)
            s *= 0.5
            s += 0.5
            ctx.save_for_backward(x, s)
            return x * s
        cdf = 0.5 * (1 + erf(x * _INV_SQRT_2))
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, grad):
        if ctx.approximate == "tanh":
            x, s = ctx.saved
            r = x * x  # r = x (2k + 6 k a x^2)
            r *= 6 * _SQRT_2_OVER_PI * 0.044715
            r += 2 * _SQRT_2_OVER_PI
            r *= x
            d = 1 - s
            d *= r
            d += 1
            d *= s
            d *= grad
            return d
        x, cdf = ctx.saved
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * (x * x))
        return grad * (cdf + x * pdf)


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b over the last axis.

    With rstd = 1 / sqrt(var + eps), xhat = (x - mean) rstd the normalized input and
    gh = g * w:  dL/dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),
    dL/dw = sum(g * xhat),  dL/db = sum(g), the sums running over every axis but the last.

    xhat itself is never formed: the forward scales x - mean by the outer product rstd w,
    and the backward reads the row means as matrix-vector products, mean(gh) = (g @ w) / C
    and mean(gh * xhat) = rstd ((g * (x - mean)) @ w) / C.
    """

    @staticmethod
    def forward(ctx, x, *weight_and_bias, eps):
        n = x.shape[-1]
        centered = x - sum_last_axis(x) / n  # (..., C)
        rstd = 1 / np.sqrt(dot_last_axis(centered, centered) / n + eps)  # (..., 1)
        ctx.save_for_backward(centered, rstd, *weight_and_bias)
        if not weight_and_bias:
            return centered * rstd
        y = outer(rstd, weight_and_bias[0])
        y *= centered  # xhat * w
        if len(weight_and_bias) == 2:
            y += weight_and_bias[1]
        return y

    @staticmethod
    def backward(ctx, grad):
        centered, rstd, *weight_and_bias = ctx.saved
        n = centered.shape[-1]
        g_centered = grad * centered  # (..., C); g * xhat = g_centered * rstd
        grads = [None]
        if weight_and_bias:
            if ctx.needs_input_grad[1]:  # sum(g * xhat) over the rows, weighted by rstd
                grads.append(rstd.reshape(-1) @ g_centered.reshape(-1, n))
            else:
                grads.append(None)
            if len(weight_and_bias) == 2:
                grads.append(sum_leading_axes(grad) if ctx.needs_input_grad[2] else None)
        if ctx.needs_input_grad[0]:
            if weight_and_bias:
                w = weight_and_bias[0]
                mean_gh = (grad @ w)[..., None] / n  # (..., 1)
                mean_gh_xhat = rstd * (g_centered @ w)[..., None] / n
                gx = outer(rstd, w)
                gx *= grad  # rstd * gh
            else:
                mean_gh = sum_last_axis(grad) / n
                mean_gh_xhat = rstd * sum_last_axis(g_centered) / n
                gx = grad * rstd
            # minus rstd * xhat * mean(gh * xhat), into g_centered's memory, free now
            gx -= np.multiply(centered, rstd * rstd * mean_gh_xhat, out=g_centered)
            gx -= rstd * mean_gh
            grads[0] = gx
        return tuple(grads)


class Linear(Function):
    """y = x W^T + b with W of shape (out, in), as in PyTorch;
    dL/dx = g W,  dL/dW = g^T x (summed over all leading axes),  dL/db = sum(g)."""

    @staticmethod
    def forward(ctx, x, weight, *bias):
        if weight.ndim != 2:
            raise ValueError(f"linear: weight must be (out, in), got shape {weight.shape}")
        if x.shape[-1:] != weight.shape[1:]:
            raise ValueError(
                f"linear: input of shape {x.shape} does not match weight of shape "
                f"{weight.shape} (expects last axis {weight.shape[1]})"
            )
        if bias:
            out_shape = (*x.shape[:-1], weight.shape[0])
            if not broadcasts_to(bias[0].shape, out_shape):
                raise ValueError(
                    f"linear: bias of shape {bias[0].shape} does not broadcast to the "
                    f"output's shape {out_shape}"
                )
        ctx.save_for_backward(x, weight)
        x2 = x.reshape(-1, x.shape[-1])  # (N, in): every row in one matrix product
        y = (x2 @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
        if bias:
            y += bias[0]
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        g2 = grad.reshape(-1, grad.shape[-1])  # (N, out)
        gx = (g2 @ weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        if len(ctx.needs_input_grad) == 2:
            return gx, gw
        return gx, gw, (grad if ctx.needs_input_grad[2] else None)  # the engine sums it back


class Embedding(Function):
    """y = W[ids] (a row per id);  dL/dW[i] = sum of the gradients of the rows that read i."""

    @staticmethod
    def forward(ctx, weight, ids):
        n = weight.shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            bad = ids[(ids < 0) | (ids >= n)].flat[0]
            raise IndexError(f"embedding: id {bad} outside the table's range [0, {n})")
        ctx.shape, ctx.ids = weight.shape, ids
        return weight[ids]

    @staticmethod
    def backward(ctx, grad):
        gw = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(gw, ctx.ids.reshape(-1), grad.reshape(-1, ctx.shape[1]))
        return gw


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
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class ids, got {targets.dtype}")
    return CrossEntropy.apply(logits, targets=targets, ignore_index=ignore_index)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * P(X <= x) for a standard normal X.
    `approximate="tanh"` is the GPT-2 formula, `"none"` the exact one (BERT)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
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
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    if rng is None:
        raise ValueError("dropout in training mode needs rng=np.random.default_rng(seed)")
    return Dropout.apply(x, p=p, rng=rng)


def layer_norm(
    x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Normalize the last axis to mean 0 and variance 1, then scale by weight, shift by bias."""
    if x.ndim == 0:
        raise ValueError("layer_norm normalizes the last axis: a 0-d tensor has none")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != x.shape[-1:]:
            raise ValueError(f"layer_norm: {name} of shape {p.shape} != {x.shape[-1:]}")
    if weight is None and bias is not None:
        raise ValueError("layer_norm: a bias without a weight is not supported")
    params = [p for p in (weight, bias) if p is not None]
    return LayerNorm.apply(x, *params, eps=float(eps))  # a NumPy float64 would widen float32


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight of shape (out_features, in_features)."""
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)


def embedding(ids: Any, weight: Tensor) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by integer `ids` (...) -> (..., dim)."""
    ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    return Embedding.apply(weight, ids=ids)
