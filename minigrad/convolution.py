"""One-dimensional convolution, shaped as PyTorch's Conv1d.

A convolution slides one small set of weights along the sequence: output position j sees
only the `kernel_size` inputs of its window (locality), and every position uses the same
weights (sharing). Unlike a recurrence, no position waits for another, so all are computed
at once: im2col gathers every window into a row (a strided view of the input, copied once),
and one matrix product applies the flattened kernels to all the rows.

    y[b, o, j] = bias[o] + sum over the channels c of o's group and the taps k of
                 weight[o, c, k] * x_padded[b, c, j * stride + k * dilation]

Stacking layers widens what an output sees (its receptive field) by dilation * (K - 1)
positions per layer; doubling the dilation at each layer widens it exponentially.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.nn import Module, Parameter, RngLike, make_rng
from minigrad.ops import pad, sliding_windows
from minigrad.tensor import Tensor


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    causal: bool = False,
) -> Tensor:
    """x (B, C_in, L), weight (C_out, C_in / groups, K), bias (C_out,) -> (B, C_out, L_out),
    L_out = (L + 2 padding - dilation (K - 1) - 1) // stride + 1.

    Channels are split into `groups` that do not see each other (groups = C_in is a
    depthwise convolution). `causal` pads dilation (K - 1) zeros on the left only, so output
    j sees no input after position j, and with stride 1 the length stays L.
    """
    if x.ndim != 3:
        raise ValueError(f"conv1d: input must be (B, C_in, L), got shape {x.shape}")
    if weight.ndim != 3 or weight.shape[0] % groups:
        raise ValueError(
            f"conv1d: weight must be (C_out, C_in / groups, kernel_size) with C_out divisible "
            f"by groups={groups}, got shape {weight.shape}"
        )
    c_out, c_group, size = weight.shape  # c_group = input channels per group
    if x.shape[1] != c_group * groups:
        raise ValueError(
            f"conv1d: input has {x.shape[1]} channels (shape {x.shape}), but a weight of shape "
            f"{weight.shape} with groups={groups} expects {c_group * groups}"
        )
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"conv1d: bias must have shape ({c_out},), got {bias.shape}")
    reach = dilation * (size - 1)  # how far a window extends beyond its first tap
    left, right = (reach, 0) if causal else (padding, padding)
    length = x.shape[2] + left + right
    if length < reach + 1:
        raise ValueError(
            f"conv1d: input of length {x.shape[2]} (padded to {length}) is shorter than the "
            f"kernel's span of {reach + 1} positions (kernel_size={size}, dilation={dilation})"
        )
    if left or right:
        x = pad(x, ((0, 0), (0, 0), (left, right)))  # (B, C_in, L + left + right)
    batch = x.shape[0]
    windows = sliding_windows(x, size, stride, dilation)  # (B, C_in, L_out, K), a view
    n_out = windows.shape[2]
    columns = (
        windows.reshape(batch, groups, c_group, n_out, size)
        .transpose(1, 0, 3, 2, 4)
        .reshape(groups, batch * n_out, c_group * size)
    )  # (groups, B * L_out, C_in / groups * K): im2col, one row per window of every sequence
    kernels = weight.reshape(groups, c_out // groups, c_group * size).transpose(0, 2, 1)
    y = columns @ kernels  # (groups, B * L_out, C_out / groups): one product per group
    y = y.reshape(groups, batch, n_out, c_out // groups).transpose(1, 0, 3, 2)
    y = y.reshape(batch, c_out, n_out)  # (B, C_out, L_out)
    return y if bias is None else y + bias.reshape(c_out, 1)


class Conv1d(Module):
    """A 1-D convolution over (B, C_in, L) inputs (see `conv1d`), with PyTorch's arguments,
    parameter names and initialisation: weight (C_out, C_in / groups, kernel_size) and bias
    (C_out,) uniform in +-1/sqrt(C_in / groups * kernel_size). `causal=True` pads on the left
    only, for sequence models that must not see the future (padding must then be 0)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        causal: bool = False,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        for name, value, least in (
            ("in_channels", in_channels, 1),
            ("out_channels", out_channels, 1),
            ("kernel_size", kernel_size, 1),
            ("stride", stride, 1),
            ("padding", padding, 0),
            ("dilation", dilation, 1),
            ("groups", groups, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"Conv1d: {name} must be an integer >= {least}, got {value!r}")
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"Conv1d: {name}={channels} is not divisible by groups={groups}")
        if causal and padding:
            raise ValueError(
                f"Conv1d: causal pads dilation * (kernel_size - 1) on the left by itself; "
                f"padding must be 0, got {padding}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.groups, self.causal = dilation, groups, causal
        rng = make_rng(rng)
        bound = 1 / math.sqrt(in_channels // groups * kernel_size)
        shape = (out_channels, in_channels // groups, kernel_size)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = (
            Parameter(rng.uniform(-bound, bound, out_channels).astype(dtype)) if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        return conv1d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            causal=self.causal,
        )

    def extra_repr(self) -> str:
        settings = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"]
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            if getattr(self, name) != default:
                settings.append(f"{name}={getattr(self, name)}")
        if self.bias is None:
            settings.append("bias=False")
        if self.causal:
            settings.append("causal=True")
        return ", ".join(settings)
