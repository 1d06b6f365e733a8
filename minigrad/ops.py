"""Primitive operations: each a `Function` with its forward and backward side by side.

A backward receives `grad`, the gradient of the loss with respect to the output, and
returns the gradient with respect to each input (the chain rule: grad times the local
derivative). Gradients may come back in the broadcast shape; the engine sums them back
to each input's shape in one place (`unbroadcast`). A backward never writes into `grad`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad import _fast
from minigrad._fast import dot_last_axis, outer, sum_along, sum_last_axis, sum_leading_axes  # noqa: F401
from minigrad.tensor import Function, Tensor, broadcasts_to


def _normalize_axis(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(int(a) % ndim if ndim else int(a) for a in axis)


def _kept_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """The shape of a reduction over `axis` with keepdims=True: reduced axes stay, as size 1.
    `grad.reshape(kept_shape)` puts them back, so the gradient broadcasts against the input."""
    if axis is None:
        return (1,) * len(shape)
    axes = _normalize_axis(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# --------------------------------------------------------------------- arithmetic
class Add(Function):
    """z = x + y;  dz/dx = 1,  dz/dy = 1."""

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """z = x - y;  dz/dx = 1,  dz/dy = -1."""

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """z = x * y;  dz/dx = y,  dz/dy = x."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        gx = grad * y if ctx.needs_input_grad[0] else None
        gy = grad * x if ctx.needs_input_grad[1] else None
        return gx, gy


class Div(Function):
    """z = x / y;  dz/dx = 1 / y,  dz/dy = -x / y**2 = -z / y."""

    @staticmethod
    def forward(ctx, x, y):
        z = x / y
        ctx.save_for_backward(y, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        y, z = ctx.saved
        gx = grad / y
        gy = -gx * z if ctx.needs_input_grad[1] else None
        return gx, gy


class Neg(Function):
    """z = -x;  dz/dx = -1."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class PowScalar(Function):
    """z = x**c for a constant c;  dz/dx = c * x**(c - 1)."""

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return _fast.power(x, exponent)  # x**c

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        c = ctx.exponent
        if c == 0:  # x**0 = 1 is constant; c * x**-1 would give 0 * inf = NaN at x = 0
            return np.zeros_like(grad)
        return grad * (c * _fast.power(x, c - 1))  # g * c * x**(c - 1)


class Pow(Function):
    """z = x**y;  dz/dx = y * x**(y - 1),  dz/dy = z * log(x).

    At x = 0 the formulas meet 0 * inf: dz/dx is 0 where y = 0 (z = 1 whatever x is), and
    dz/dy is taken as 0 where y >= 0 and is -inf where y < 0 (z = inf), as in PyTorch.
    """

    @staticmethod
    def forward(ctx, x, y):
        z = x**y
        ctx.save_for_backward(x, y, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y, z = ctx.saved
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = grad * y * x ** np.where(y == 0, 1, y - 1)  # y = 0 gives 0 * x**1 = 0
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                z_log_x = z * np.log(x)  # at x = 0: 0 * -inf for y > 0, 1 * -inf at y = 0
            gy = grad * np.where((x == 0) & (y >= 0), np.zeros((), z.dtype), z_log_x)
        return gx, gy


def _matmul_error(x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> str:
    """Say which rule a failed `x @ y` broke, in the shapes' own terms."""
    if not x_shape or not y_shape:
        return f"matmul needs at least 1-D operands, got shapes {x_shape} and {y_shape}"
    k_y = y_shape[0] if len(y_shape) == 1 else y_shape[-2]
    if x_shape[-1] != k_y:
        return (
            f"matmul shape mismatch: {x_shape} @ {y_shape} "
            f"(inner dimensions {x_shape[-1]} and {k_y} differ)"
        )
    return f"matmul shape mismatch: batch axes of {x_shape} and {y_shape} do not broadcast"


class MatMul(Function):
    """Z = X @ Y;  dL/dX = G @ Y^T,  dL/dY = X^T @ G (over the last two axes).

    Vectors are treated as NumPy does: a 1-D X is a row (1, k), a 1-D Y a column (k, 1),
    and the added axis is removed again. Batch axes broadcast; their gradient is summed
    back by the engine.
    """

    @staticmethod
    def forward(ctx, x, y):
        try:
            z = x @ y
        except ValueError as error:
            raise ValueError(_matmul_error(x.shape, y.shape)) from error
        ctx.save_for_backward(x, y)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        if x.ndim == y.ndim == 2:  # the common case, without the vector bookkeeping below
            gx = grad @ y.T if ctx.needs_input_grad[0] else None
            gy = x.T @ grad if ctx.needs_input_grad[1] else None
            return gx, gy
        x2 = x[None, :] if x.ndim == 1 else x  # (..., n, k)
        y2 = y[:, None] if y.ndim == 1 else y  # (..., k, m)
        if x.ndim == 1 and y.ndim == 1:
            g = grad.reshape(1, 1)
        elif x.ndim == 1:
            g = np.expand_dims(grad, -2)  # (..., 1, m)
        elif y.ndim == 1:
            g = grad[..., None]  # (..., n, 1)
        else:
            g = grad  # (..., n, m)
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = g @ y2.swapaxes(-1, -2)  # (..., n, k)
            if x.ndim == 1:
                gx = gx[..., 0, :]
        if ctx.needs_input_grad[1]:
            gy = x2.swapaxes(-1, -2) @ g  # (..., k, m)
            if y.ndim == 1:
                gy = gy[..., 0]
        return gx, gy


class Cast(Function):
    """z = x converted to another dtype;  the gradient is converted back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.input_dtype)


# --------------------------------------------------------------------- reductions
class Sum(Function):
    """z = sum of x over `axis`;  dz/dx = 1 for every summed element."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.shape, ctx.kept_shape = x.shape, _kept_shape(x.shape, axis)
        return _fast.sum_over(x, axis, keepdims)  # x.sum(axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _fast.repeat_grad(grad, ctx.kept_shape, ctx.shape)  # g along the summed axes


class Mean(Function):
    """z = sum of x over `axis` / n;  dz/dx = 1 / n."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        axes = _normalize_axis(axis, x.ndim)
        ctx.shape, ctx.kept_shape = x.shape, _kept_shape(x.shape, axes)
        ctx.count = math.prod(x.shape[a] for a in axes)
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return np.broadcast_to(grad.reshape(ctx.kept_shape) / ctx.count, ctx.shape)


class Max(Function):
    """z = max of x over `axis`;  dz/dx = 1 at the maximum (shared equally among ties)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.axes = _normalize_axis(axis, x.ndim)
        z = x.max(axis=axis, keepdims=True)
        ctx.save_for_backward(x, z)
        return z if keepdims else np.squeeze(z, axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        x, z = ctx.saved
        is_max = x == z
        ties = is_max.sum(axis=ctx.axes, keepdims=True, dtype=grad.dtype)
        return is_max * (grad.reshape(z.shape) / ties)


class Var(Function):
    """z = sum((x - mean)**2) / (n - ddof);  dz/dx = 2 (x - mean) / (n - ddof)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims, ddof):
        axes = _normalize_axis(axis, x.ndim)
        ctx.kept_shape = _kept_shape(x.shape, axes)
        n = math.prod(x.shape[a] for a in axes)
        if n - ddof <= 0:
            raise ValueError(f"var over {n} elements with ddof={ddof} divides by {n - ddof}")
        centered = x - x.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.divisor = n - ddof
        return (centered * centered).sum(axis=axis, keepdims=keepdims) / ctx.divisor

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved
        return grad.reshape(ctx.kept_shape) * centered * (2 / ctx.divisor)


# --------------------------------------------------------------------- elementwise
class Exp(Function):
    """z = exp(x);  dz/dx = exp(x) = z."""

    @staticmethod
    def forward(ctx, x):
        z = np.exp(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        return grad * z


class Log(Function):
    """z = log(x);  dz/dx = 1 / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad / x


class Sqrt(Function):
    """z = sqrt(x);  dz/dx = 1 / (2 sqrt(x)) = 0.5 / z."""

    @staticmethod
    def forward(ctx, x):
        z = np.sqrt(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        return grad * 0.5 / z


class Tanh(Function):
    """z = tanh(x);  dz/dx = 1 - z**2."""

    @staticmethod
    def forward(ctx, x):
        z = np.tanh(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        return grad * (1 - z * z)


def sigmoid_array(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    """z = 1 / (1 + exp(-x));  dz/dx = z (1 - z)."""

    @staticmethod
    def forward(ctx, x):
        z = sigmoid_array(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved
        return grad * z * (1 - z)


class ReLU(Function):
    """z = max(x, 0);  dz/dx = 1 where x > 0, else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x > 0)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved
        return grad * positive


class Abs(Function):
    """z = |x|;  dz/dx = sign(x) (0 at x = 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * np.sign(x)


# --------------------------------------------------------------------- shape and selection
class Reshape(Function):
    """z = x with a new shape;  the gradient is reshaped back."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError as error:
            raise ValueError(f"cannot reshape a tensor of shape {x.shape} into {shape}") from error

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Transpose(Function):
    """z = x with its axes permuted;  the gradient is permuted back (inverse permutation)."""

    @staticmethod
    def forward(ctx, x, axes):
        axes = tuple(range(x.ndim))[::-1] if axes is None else axes
        z = np.transpose(x, axes)  # checks that axes is a permutation
        ctx.axes = tuple(a % x.ndim for a in axes)  # argsort inverts it only without negatives
        return z

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, np.argsort(ctx.axes))


def _has_integer_array(index: Any) -> bool:
    """Whether `index` picks elements by integer arrays, which may repeat an element. An
    outer tuple indexes several axes; a list, tuple or range inside it is an array."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(
        isinstance(p, (list, tuple, range, np.ndarray)) and np.asarray(p).dtype.kind in "iu"
        for p in parts
    )


class GetItem(Function):
    """z = x[index];  the gradient is scattered back into zeros, summed where the
    index repeats an element (an embedding lookup reads a row many times)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        gx = np.zeros(ctx.shape, dtype=grad.dtype)
        if _has_integer_array(ctx.index):
            np.add.at(gx, ctx.index, grad)
        else:
            gx[ctx.index] = grad
        return gx


class Concatenate(Function):
    """z = the inputs joined along `axis`;  each input gets its own slice of the gradient."""

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.boundaries = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.boundaries, axis=ctx.axis))


class Stack(Function):
    """z = the inputs stacked along a new `axis`;  input i gets the gradient's slice i."""

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.moveaxis(grad, ctx.axis, 0))


class Pad(Function):
    """z = x with `widths[a] = (before, after)` zeros added at the two ends of each axis a;
    dL/dx = the gradient with those borders cut off."""

    @staticmethod
    def forward(ctx, x, widths):
        ctx.inner = tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))
        return np.pad(x, widths)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.inner]


class SlidingWindows(Function):
    """z[..., j, k] = x[..., j * step + k * dilation]: window j of `size` taps along the
    last axis (the im2col of a 1-D convolution), a view of x without a copy.
    dL/dx[..., i] = the sum of the gradients of every (j, k) that reads position i, added
    one tap k at a time (a strided slice of x per tap, no loop over the windows)."""

    @staticmethod
    def forward(ctx, x, size, step, dilation):
        span = dilation * (size - 1) + 1
        ctx.shape, ctx.size, ctx.step, ctx.dilation = x.shape, size, step, dilation
        windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=-1)  # (..., L', span)
        return windows[..., ::step, ::dilation]  # (..., n_windows, size)

    @staticmethod
    def backward(ctx, grad):
        gx = np.zeros(ctx.shape, grad.dtype)
        last = ctx.step * (grad.shape[-2] - 1)  # the first tap of the last window
        for k in range(ctx.size):
            start = k * ctx.dilation
            gx[..., start : start + last + 1 : ctx.step] += grad[..., k]
        return gx


class MaskedFill(Function):
    """z = value where mask else x;  dz/dx = 0 where mask else 1."""

    @staticmethod
    def forward(ctx, x, mask, value):
        mask = np.asarray(mask, dtype=bool)
        if not broadcasts_to(mask.shape, x.shape):
            raise ValueError(
                f"masked_fill: mask of shape {mask.shape} does not broadcast to {x.shape}"
            )
        ctx.save_for_backward(mask)
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved
        return np.where(mask, np.zeros((), grad.dtype), grad)


class Where(Function):
    """z = x where condition else y;  dz/dx = condition,  dz/dy = not condition."""

    @staticmethod
    def forward(ctx, x, y, condition):
        ctx.save_for_backward(condition)
        return np.where(condition, x, y)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved
        zero = np.zeros((), grad.dtype)
        gx = np.where(condition, grad, zero) if ctx.needs_input_grad[0] else None
        gy = np.where(condition, zero, grad) if ctx.needs_input_grad[1] else None
        return gx, gy


# --------------------------------------------------------------------- functions over tensors
def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (NumPy's `concatenate`)."""
    return Concatenate.apply(*[_tensor(t) for t in tensors], axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along a new axis (NumPy's `stack`)."""
    return Stack.apply(*[_tensor(t) for t in tensors], axis=axis)


def split(x: Tensor, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Cut a tensor into pieces along `axis` (NumPy's `split`): each piece is a slice."""
    n = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if n % indices_or_sections:
            raise ValueError(
                f"split: axis of size {n} does not divide into {indices_or_sections} equal parts"
            )
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0, *indices_or_sections, n]
    prefix = (slice(None),) * (axis % x.ndim)
    return [x[(*prefix, slice(a, b))] for a, b in zip(bounds[:-1], bounds[1:])]


def pad(x: Tensor, widths: Sequence[tuple[int, int]]) -> Tensor:
    """Add zeros at the ends of each axis: `widths` holds one (before, after) pair per axis
    (NumPy's pad_width, constant mode)."""
    pairs = tuple(tuple(pair) for pair in widths)
    if len(pairs) != x.ndim or any(
        len(pair) != 2 or any(not isinstance(w, (int, np.integer)) or w < 0 for w in pair)
        for pair in pairs
    ):
        raise ValueError(
            f"pad: widths must be {x.ndim} pairs (before, after) of non-negative integers, "
            f"one per axis of the shape {x.shape}; got {widths!r}"
        )
    return Pad.apply(x, widths=tuple((int(b), int(a)) for b, a in pairs))


def sliding_windows(x: Tensor, size: int, step: int = 1, dilation: int = 1) -> Tensor:
    """The windows of `size` taps along the last axis, `step` apart, with `dilation` between
    taps: (..., L) -> (..., n, size), n = (L - dilation (size - 1) - 1) // step + 1."""
    for name, value in (("size", size), ("step", step), ("dilation", dilation)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"sliding_windows: {name} must be a positive integer, got {value!r}")
    span = dilation * (size - 1) + 1
    if x.ndim == 0 or x.shape[-1] < span:
        raise ValueError(
            f"sliding_windows: a window of {size} taps with dilation {dilation} spans {span} "
            f"positions, more than the last axis of the shape {x.shape} holds"
        )
    return SlidingWindows.apply(x, size=int(size), step=int(step), dilation=int(dilation))


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """Elementwise choice: x where `condition` is true, else y (NumPy's `where`)."""
    condition = np.asarray(condition.data if isinstance(condition, Tensor) else condition, bool)
    if isinstance(x, Tensor):
        x, y = x._operands(y)
    elif isinstance(y, Tensor):
        y, x = y._operands(x)
    return Where.apply(_tensor(x), _tensor(y), condition=condition)
