"""Faster forms of a few NumPy expressions, for the Functions that run over large arrays.

Each fast function computes what the plain NumPy function beside it (`*_plain`) computes,
and the plain one is what a reader should take it to mean; tests/minigrad/test_fast.py
checks that each pair agrees, on the shapes and edge cases the fast form was written for.
Each says in its docstring why it is faster. On a (12, 64, 512) float32 array one pass of
NumPy over the array costs 40-90 us; these save passes or run them in BLAS, which is
vectorized and threaded (`benchmarks/bench_engine.py`, the `pipeline` workload).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

# Below this many elements NumPy's own loops start faster than a call into BLAS.
BLAS_MIN_SIZE = 1 << 14


def _use_blas(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" and a.size >= BLAS_MIN_SIZE


# --------------------------------------------------------------------- sums by BLAS
# NumPy sums a short row with a pairwise loop; a matrix-vector product with a vector of ones
# adds the same numbers about three times faster.
def sum_last_axis(a: np.ndarray) -> np.ndarray:
    """`sum_last_axis_plain`, as a @ ones(C) for a large float array."""
    if not _use_blas(a):
        return a.sum(axis=-1, keepdims=True)
    return (a @ np.ones(a.shape[-1], a.dtype))[..., None]


def sum_last_axis_plain(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=-1, keepdims=True)


def sum_along(a: np.ndarray, axis: Any) -> np.ndarray:
    """`sum_along_plain`, by BLAS when `axis` is the last."""
    if a.ndim and axis in (-1, a.ndim - 1):
        return sum_last_axis(a)
    return a.sum(axis=axis, keepdims=True)


def sum_along_plain(a: np.ndarray, axis: Any) -> np.ndarray:
    return a.sum(axis=axis, keepdims=True)


def sum_leading_axes(a: np.ndarray) -> np.ndarray:
    """`sum_leading_axes_plain`, as ones(N) @ a.reshape(N, C) for a large float array."""
    rows = a.reshape(-1, a.shape[-1])  # (N, C)
    if not _use_blas(a):
        return rows.sum(axis=0)
    return np.ones(rows.shape[0], a.dtype) @ rows


def sum_leading_axes_plain(a: np.ndarray) -> np.ndarray:
    """The sum over every axis but the last: the gradient of a weight broadcast over rows."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


def sum_over(a: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """`sum_over_plain`: for a large float array, the rows summed by BLAS (then, for the
    sum of everything, their sums)."""
    if a.size < BLAS_MIN_SIZE or a.dtype.kind != "f":  # first: small graphs sum often
        return a.sum(axis=axis, keepdims=keepdims)
    if axis is None:
        total = sum_last_axis(a.reshape(-1, a.shape[-1])).sum(dtype=a.dtype)
        return total.reshape((1,) * a.ndim) if keepdims else total
    if axis in (-1, a.ndim - 1):
        total = sum_last_axis(a)
        return total if keepdims else total[..., 0]
    return a.sum(axis=axis, keepdims=keepdims)


def sum_over_plain(a: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return a.sum(axis=axis, keepdims=keepdims)


def dot_along(a: np.ndarray, b: np.ndarray, axis: Any) -> np.ndarray:
    """`dot_along_plain` without the product array when `axis` is the last: one
    (1, C) @ (C, 1) matrix product per row."""
    if a.ndim and axis in (-1, a.ndim - 1):
        return (a[..., None, :] @ b[..., :, None])[..., 0]
    return (a * b).sum(axis=axis, keepdims=True)


def dot_along_plain(a: np.ndarray, b: np.ndarray, axis: Any) -> np.ndarray:
    return (a * b).sum(axis=axis, keepdims=True)


def outer(column: np.ndarray, row: np.ndarray) -> np.ndarray:
    """`outer_plain`: column (..., 1) times row (C,), the (..., C) outer product.

    For large arrays it is the matrix product [column, 0] @ [row; 0], which BLAS writes
    about twice as fast as NumPy's broadcasting loop; the zero pad is there because NumPy
    computes a product over an inner size of 1 with a slow loop of its own instead.
    """
    if column.size * row.shape[-1] < BLAS_MIN_SIZE:
        return column * row
    left = np.zeros((column.size, 2), column.dtype)  # (N, 2)
    left[:, 0] = column.reshape(-1)
    right = np.zeros((2, row.shape[-1]), row.dtype)  # (2, C)
    right[0] = row
    return (left @ right).reshape(*column.shape[:-1], row.shape[-1])


def outer_plain(column: np.ndarray, row: np.ndarray) -> np.ndarray:
    return column * row


# --------------------------------------------------------------------- gradients of a sum
def repeat_grad(grad: np.ndarray, kept_shape: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    """`repeat_grad_plain`; for a small array, a fresh one: the next backward reads a
    fresh array 2-7 times faster than a broadcast view (what a small graph spends its time on)."""
    if grad.size == 1 and math.prod(shape) < BLAS_MIN_SIZE:
        full = np.empty(shape, grad.dtype)
        full[...] = grad.reshape(())
        return full
    return np.broadcast_to(grad.reshape(kept_shape), shape)


def repeat_grad_plain(grad: np.ndarray, kept_shape: tuple[int, ...], shape: tuple[int, ...]):
    """grad repeated along the summed axes, as a read-only view that takes no memory."""
    return np.broadcast_to(grad.reshape(kept_shape), shape)


# --------------------------------------------------------------------- scatter-add
ONE_HOT_MAX_ROWS = 256  # up to this many table rows, the one-hot product beats np.add.at


def scatter_add_rows(ids: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """`scatter_add_rows_plain`; for a small table, as the matrix product onehot(ids)^T @
    rows: BLAS adds the rows about four times faster than np.add.at's element-by-element
    loop (which stays the faster one for a large table, where the one-hot matrix is big)."""
    if n > ONE_HOT_MAX_ROWS or rows.dtype.kind != "f":
        return scatter_add_rows_plain(ids, rows, n)
    one_hot = np.zeros((n, len(ids)), rows.dtype)  # (n, N): column j is onehot(ids[j])
    one_hot[ids, np.arange(len(ids))] = 1
    return one_hot @ rows


def scatter_add_rows_plain(ids: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """out (n, C) with out[i] = the sum of rows[j] (N, C) over every j with ids[j] == i."""
    out = np.zeros((n, rows.shape[1]), rows.dtype)
    np.add.at(out, ids, rows)
    return out


# --------------------------------------------------------------------- powers
def power(x: np.ndarray, c: float) -> np.ndarray:
    """`power_plain`, with the common exponents done by multiplication or sqrt (a general
    pow is about 40 times slower)."""
    if c == 2:
        return x * x
    if c == 3:
        return x * x * x
    if c == 1:
        return x
    if c == 0.5:
        return np.sqrt(x)
    if c == -1:
        return 1 / x
    return x**c


def power_plain(x: np.ndarray, c: float) -> np.ndarray:
    return x**c


# --------------------------------------------------------------------- fused kernels
# A NumPy expression writes each intermediate result to a fresh array; these write into one
# array in place, step by step, which on large arrays is 1.3-1.6 times faster (fewer cold
# pages and cache misses), and use the BLAS forms above for row sums and outer products.
# The elementwise kernels go further and run every step on one block of BLOCK_SIZE elements
# before the next block: a block's arrays stay in the core's L2 cache between steps, where a
# whole (8, 256, 1536) array goes to memory and back at each of them (1.3-1.8 times faster).
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
BLOCK_SIZE = 1 << 15  # elements: 128 KB per float32 array


def blockwise(kernel: Any, *arrays: np.ndarray) -> None:
    """kernel(*blocks) on matching blocks of BLOCK_SIZE elements of equally shaped arrays (the
    kernel writes its outputs into some of them), or on the whole arrays at once when they
    are small or not all C-contiguous (a broadcast view, say)."""
    size = arrays[0].size
    if size <= BLOCK_SIZE or any(a.shape != arrays[0].shape or not a.flags.c_contiguous
                                 for a in arrays):  # fmt: skip
        kernel(*arrays)
        return
    flat = [a.reshape(-1) for a in arrays]
    for start in range(0, size, BLOCK_SIZE):
        kernel(*[a[start : start + BLOCK_SIZE] for a in flat])


def tanh_gelu(x: np.ndarray) -> np.ndarray:
    """`tanh_gelu_plain`, block by block and in place: u = x (k + k a x^2),
    s = (1 + tanh u) / 2, y = x s."""
    y = np.empty_like(x)  # an array even when x is 0-d
    blockwise(_tanh_gelu_block, x, y)
    return y


def _tanh_gelu_block(x: np.ndarray, y: np.ndarray) -> None:
    s = _tanh_gelu_gate(x)
    np.multiply(x, s, out=y)


def _tanh_gelu_gate(x: np.ndarray) -> np.ndarray:
    s = np.multiply(x, x, out=np.empty_like(x))
    s *= SQRT_2_OVER_PI * 0.044715
    s += SQRT_2_OVER_PI
    s *= x
    np.tanh(s, out=s)
    s *= 0.5
    s += 0.5
    return s


def tanh_gelu_plain(x: np.ndarray) -> np.ndarray:
    """GELU(x) ~ x s with s = (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3)."""
    return x * tanh_gelu_gate_plain(x)


def tanh_gelu_gate_plain(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def tanh_gelu_grad(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`tanh_gelu_grad_plain`, block by block and in place: s again from x (cheaper than
    storing it: in cache, tanh costs less than reading s back from memory), then
    r = x (2k + 6 k a x^2) and the product."""
    d = np.empty(np.broadcast_shapes(grad.shape, x.shape), np.result_type(grad, x))
    blockwise(_tanh_gelu_grad_block, grad, x, d)
    return d


def _tanh_gelu_grad_block(grad: np.ndarray, x: np.ndarray, d: np.ndarray) -> None:
    s = _tanh_gelu_gate(x)
    np.multiply(x, x, out=d)
    d *= 6 * SQRT_2_OVER_PI * 0.044715
    d += 2 * SQRT_2_OVER_PI
    d *= x  # r
    d *= 1 - s
    d += 1
    d *= s
    d *= grad


def tanh_gelu_grad_plain(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g * dy/dx = g s (1 + (1 - s) r), r = 2 sqrt(2/pi) x (1 + 3 * 0.044715 x^2)."""
    s = tanh_gelu_gate_plain(x)
    r = 2 * SQRT_2_OVER_PI * x * (1 + 3 * 0.044715 * x**2)
    return grad * s * (1 + (1 - s) * r)


def adam_step(
    data: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, max_v: Any,
    lr: float, beta1: float, beta2: float, eps: float, step: int, decay: float = 1.0,
) -> None:  # fmt: skip
    """`adam_step_plain`, block by block in place (the four arrays of a block stay in cache
    through every step; about 1.7 times faster on a large parameter). The moments move by
    m += (1 - b1)(g - m), and the bias corrections fold into two scalars:
    lr m_hat / (sqrt(v_hat) + eps) = (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2)),
    with c1 = 1 - b1^t, c2 = 1 - b2^t."""
    c1, c2 = 1 - beta1**step, 1 - beta2**step
    kernel = functools.partial(
        _adam_block, beta1=beta1, beta2=beta2, eps=eps * math.sqrt(c2),
        step_size=lr * math.sqrt(c2) / c1, decay=decay,
    )  # fmt: skip
    arrays = (data, grad, m, v) if max_v is None else (data, grad, m, v, max_v)
    blockwise(kernel, *arrays)


def _adam_block(data, grad, m, v, max_v=None, *, beta1, beta2, eps, step_size, decay):
    if decay != 1:
        data *= decay
    t = np.subtract(grad, m, out=np.empty_like(m))
    t *= 1 - beta1
    m += t
    np.multiply(grad, grad, out=t)
    t -= v
    t *= 1 - beta2
    v += t
    if max_v is not None:
        v = np.maximum(max_v, v, out=max_v)
    np.sqrt(v, out=t)
    t += eps
    np.divide(m, t, out=t)
    t *= step_size
    data -= t


def adam_step_plain(
    data: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, max_v: Any,
    lr: float, beta1: float, beta2: float, eps: float, step: int, decay: float = 1.0,
) -> None:  # fmt: skip
    """One Adam step in place: p *= decay (AdamW's 1 - lr wd); m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g^2; with amsgrad v_max = max(v_max, v) stands for v below;
    p -= lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)."""
    data *= decay
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * (grad * grad)
    if max_v is not None:
        v = np.maximum(max_v, v, out=max_v)
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    data -= lr * m_hat / (np.sqrt(v_hat) + eps)


def scale_and_shift(
    centered: np.ndarray, rstd: np.ndarray, weight: Any = None, bias: Any = None
) -> np.ndarray:
    """`scale_and_shift_plain` without forming xhat: (rstd w) by BLAS, then times centered."""
    if weight is None:
        return centered * rstd
    y = outer(rstd, weight)
    y *= centered
    if bias is not None:
        y += bias
    return y


def scale_and_shift_plain(
    centered: np.ndarray, rstd: np.ndarray, weight: Any = None, bias: Any = None
) -> np.ndarray:
    """The output of layer norm, xhat * w + b with xhat = centered * rstd (w = 1, b = 0 if
    not given); centered (..., C) is x - mean, rstd (..., 1) is 1 / sqrt(var + eps)."""
    y = centered * rstd
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def layer_norm_backward(
    grad: np.ndarray, centered: np.ndarray, rstd: np.ndarray, weight: Any = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """`layer_norm_backward_plain` without forming xhat or gh: the row means are
    matrix-vector products, mean(gh) = (g @ w) / C and mean(gh * xhat) =
    rstd ((g * centered) @ w) / C, and dL/dw = rstd @ (g * centered) over the rows."""
    n = centered.shape[-1]
    g_centered = grad * centered  # (..., C); g * xhat = g_centered * rstd
    if weight is None:
        grad_w = None
        mean_gh = sum_last_axis(grad) / n  # (..., 1)
        mean_gh_xhat = rstd * sum_last_axis(g_centered) / n
        gx = grad * rstd
    else:
        grad_w = rstd.reshape(-1) @ g_centered.reshape(-1, n)  # (C,)
        mean_gh = (grad @ weight)[..., None] / n
        mean_gh_xhat = rstd * (g_centered @ weight)[..., None] / n
        gx = outer(rstd, weight)
        gx *= grad  # rstd * gh
    # minus rstd * xhat * mean(gh * xhat), into g_centered's memory, free now
    gx -= np.multiply(centered, rstd * rstd * mean_gh_xhat, out=g_centered)
    gx -= rstd * mean_gh
    return gx, grad_w


def layer_norm_backward_plain(
    grad: np.ndarray, centered: np.ndarray, rstd: np.ndarray, weight: Any = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """dL/dx = rstd (gh - mean(gh) - xhat mean(gh xhat)) with gh = g * w, xhat = centered
    * rstd, means over the last axis; and dL/dw = sum(g * xhat) over every other axis
    (None without a weight)."""
    xhat = centered * rstd
    gh = grad if weight is None else grad * weight
    mean_gh = gh.mean(axis=-1, keepdims=True)
    mean_gh_xhat = (gh * xhat).mean(axis=-1, keepdims=True)
    grad_x = rstd * (gh - mean_gh - xhat * mean_gh_xhat)
    if weight is None:
        return grad_x, None
    return grad_x, (grad * xhat).reshape(-1, xhat.shape[-1]).sum(axis=0)


# --------------------------------------------------------------------- exp for softmax
def exp_and_sum(
    x: np.ndarray, axis: Any = -1, always_shift: bool = False
) -> tuple[np.ndarray, np.ndarray, Any]:
    """`exp_and_sum_plain`, saving two passes (a max and a subtraction) where it can.

    Every shift c constant along `axis` gives the same softmax e / s and log-sum-exp
    log(s) + c; c only has to keep exp in range. When no entry is large enough to overflow
    and no row sums to almost nothing, c = 0 serves; otherwise c is the row's maximum.
    A caller in the log domain passes `always_shift`: x - (log(s) + c) is then
    (x - c) - log(s), where an unshifted x - log(s) would cancel two large numbers and lose
    a small result, the loss of a confident guess. Returns e, s and c (0 or an array).
    """
    if x.dtype.kind == "f" and x.size and not always_shift:
        limit = _exp_safe_limit(x.dtype)
        if x.max() <= limit:  # NaN compares False and takes the shifted path
            e = np.exp(x)
            total = sum_along(e, axis)
            if total.min() >= np.exp(-limit):
                return e, total, 0
    shift = _max_or_zero(x, axis)
    e = np.subtract(x, shift, out=np.empty_like(x))  # an array even when x is 0-d
    np.exp(e, out=e)
    return e, sum_along(e, axis), shift


def exp_and_sum_plain(x: np.ndarray, axis: Any = -1) -> tuple[np.ndarray, np.ndarray, Any]:
    """e = exp(x - c) and its sum s along `axis` (kept), with c the row's maximum.

    exp(x - c) <= 1, so it cannot overflow, and the largest entry of each row is exp(0) = 1,
    so no row sums to 0. An infinite maximum is replaced by 0, so that a row all -inf (every
    key masked) gives e = 0 and a row holding +inf a log-sum-exp of +inf.
    """
    c = _max_or_zero(x, axis)
    e = np.exp(x - c)
    return e, e.sum(axis=axis, keepdims=True), c


def _max_or_zero(x: np.ndarray, axis: Any) -> np.ndarray:
    c = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isinf(c), np.zeros((), c.dtype), c)


@functools.cache
def _exp_safe_limit(dtype: np.dtype) -> float:
    """Half the log of the largest float: exp(x) of every x up to it, summed over up to
    exp(limit) terms, stays finite, and a row whose sum is above exp(-limit) keeps every
    probability above exp(-limit) in full precision."""
    return float(np.log(np.finfo(dtype).max)) / 2


def dot_last_axis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dot_along(a, b, -1), under the name minigrad.ops exported it by."""
    return dot_along(a, b, -1)
