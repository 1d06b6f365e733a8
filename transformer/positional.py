"""Positional encodings: telling attention where each token is.

Attention compares every query with every key and sums the values; nothing in that
formula knows the order of the tokens (permute the inputs and the outputs permute the
same way). Order has to be put in by hand, in one of three ways:

- sinusoidal (Vaswani et al. 2017): add a fixed pattern of sines and cosines of many
  wavelengths to the token embeddings;
- learned (GPT-2, BERT): add a trained vector per position, from a table of `max_len` rows;
- rotary, RoPE (Su et al. 2021): rotate each pair of query/key dimensions by an angle
  proportional to the position, so that the score q . k depends only on the distance
  between the two positions.

Shapes use the (B, T, C) vocabulary: batch, time (sequence position), channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import Tensor, concatenate, stack
from minigrad.nn import Module, Parameter, RngLike, make_rng


# --------------------------------------------------------------------- sinusoidal
def sinusoidal_encoding(
    T: int, d_model: int, base: float = 10000.0, offset: int = 0, dtype: Any = np.float32
) -> np.ndarray:
    """The fixed table of Vaswani et al.: shape (T, d_model) for positions offset..offset+T-1.

    PE[pos, 2i] = sin(pos / base^(2i / d_model)),  PE[pos, 2i+1] = cos(pos / base^(2i / d_model)).
    Each pair of dimensions is a clock turning at its own speed, from one turn per 2 pi
    positions (i = 0) to one per 2 pi * base positions, so every position gets a distinct
    pattern, and PE[pos + k] is a fixed rotation of PE[pos] for every pos.
    """
    if T < 0 or d_model < 1:
        raise ValueError(f"sinusoidal_encoding needs T >= 0 and d_model >= 1, got {T}, {d_model}")
    positions = np.arange(offset, offset + T, dtype=np.float64)[:, None]  # (T, 1)
    inv_freq = base ** (-np.arange(0, d_model, 2) / d_model)  # (ceil(d_model / 2),)
    angles = positions * inv_freq  # (T, ceil(d_model / 2))
    table = np.empty((T, d_model), dtype=dtype)
    table[:, 0::2] = np.sin(angles)  # even dimensions
    table[:, 1::2] = np.cos(angles[:, : d_model // 2])  # odd dimensions
    return table


class SinusoidalPositionalEncoding(Module):
    """x + PE[offset : offset + T]:  x (B, T, C) -> (B, T, C).  No parameters, any length.

    `offset` is the position of the first token of x (non-zero when decoding with a KV cache).
    """

    def __init__(self, d_model: int, base: float = 10000.0) -> None:
        super().__init__()
        self.d_model, self.base = d_model, base

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"SinusoidalPositionalEncoding(d_model={self.d_model}) got input of shape {x.shape}"
            )
        T = x.shape[-2]
        return x + sinusoidal_encoding(T, self.d_model, self.base, offset, x.dtype)  # (B, T, C)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, base={self.base}"


# --------------------------------------------------------------------- learned
class LearnedPositionalEmbedding(Module):
    """x + W[offset : offset + T], one trained vector per position (GPT-2's `wpe`).

    x (B, T, C) -> (B, T, C). W has shape (max_len, d_model), drawn from N(0, 0.02^2) as in
    GPT-2. A sequence reaching past position max_len - 1 has no vector: a ValueError.
    """

    def __init__(
        self, max_len: int, d_model: int, rng: RngLike = None, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        rng = make_rng(rng)
        self.max_len, self.d_model = max_len, d_model
        self.weight = Parameter((0.02 * rng.standard_normal((max_len, d_model))).astype(dtype))

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"LearnedPositionalEmbedding(d_model={self.d_model}) got input of shape {x.shape}"
            )
        T = x.shape[-2]
        if offset < 0 or offset + T > self.max_len:
            raise ValueError(
                f"positions {offset}..{offset + T - 1} (sequence length T={T}, offset={offset}) "
                f"do not fit the learned positional table of max_len={self.max_len}"
            )
        return x + self.weight[offset : offset + T]  # (B, T, C) + (T, C)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"


# --------------------------------------------------------------------- rotary (RoPE)
def rotary_angles(T: int, d_head: int, base: float = 10000.0, offset: int = 0) -> np.ndarray:
    """Angle of each rotated pair at each position: (T, d_head / 2), float64.

    angle[pos, i] = pos * theta_i with theta_i = base^(-2i / d_head): pair 0 turns fastest.
    """
    inv_freq = base ** (-np.arange(0, d_head, 2) / d_head)  # (d_head / 2,) theta_i
    positions = np.arange(offset, offset + T, dtype=np.float64)  # (T,)
    return np.outer(positions, inv_freq)  # (T, d_head / 2)


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) for the two halves of the last axis (GPT-NeoX, LLaMA layout):
    dimension i is paired with dimension i + d/2."""
    half = x.shape[-1] // 2
    return concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rotate_pairs(x: Tensor) -> Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...) (GPT-J, RoFormer layout):
    dimension 2i is paired with dimension 2i + 1."""
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., d/2) each
    return stack([-odd, even], axis=-1).reshape(x.shape)  # interleave back to (..., d)


def apply_rotary(
    x: Tensor, offset: int = 0, base: float = 10000.0, interleaved: bool = False
) -> Tensor:
    """Rotate every pair of dimensions of x (..., T, d_head) by its angle at its position.

    For a pair (a, b) at position pos with angle t = pos * theta_i:
        (a, b) -> (a cos t - b sin t,  b cos t + a sin t),
    computed for all pairs at once as x * cos + rotate(x) * sin. Rotating q at position m
    and k at position n by these angles multiplies their score by a rotation of angle
    (m - n) * theta_i per pair: q . k depends on the positions only through m - n.
    `interleaved` picks which dimensions form a pair: (2i, 2i+1), or (i, i + d/2) if False.
    """
    T, d_head = x.shape[-2], x.shape[-1]
    if d_head % 2:
        raise ValueError(f"rotary embedding needs an even head size, got d_head={d_head}")
    angles = rotary_angles(T, d_head, base, offset)  # (T, d_head / 2)
    if interleaved:
        angles = np.repeat(angles, 2, axis=-1)  # (T, d_head): t0 t0 t1 t1 ...
        rotated = rotate_pairs(x)
    else:
        angles = np.concatenate([angles, angles], axis=-1)  # (T, d_head): t0 t1 ... t0 t1 ...
        rotated = rotate_half(x)
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    return x * cos + rotated * sin  # (..., T, d_head)


class RotaryEmbedding(Module):
    """Rotary position embedding (RoPE) for queries and keys: (..., T, d_head) -> same shape.

    Applied to q and k after they are split into heads, never to v; no parameters.
    `offset` is the position of the first token (the number of cached tokens when decoding).
    """

    def __init__(self, d_head: int, base: float = 10000.0, interleaved: bool = False) -> None:
        super().__init__()
        if d_head % 2:
            raise ValueError(f"RotaryEmbedding needs an even head size, got d_head={d_head}")
        self.d_head, self.base, self.interleaved = d_head, base, interleaved

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        if x.shape[-1] != self.d_head:
            raise ValueError(f"RotaryEmbedding(d_head={self.d_head}) got input of shape {x.shape}")
        return apply_rotary(x, offset, self.base, self.interleaved)

    def extra_repr(self) -> str:
        return f"d_head={self.d_head}, base={self.base}, interleaved={self.interleaved}"
