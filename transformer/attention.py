"""Attention, from a weighted average to multi-head attention with a KV cache.

Read this file top to bottom; each step adds one idea.

1. `dot_product_attention(x)`: each position's output is an average of all positions,
   weighted by how similar they are (softmax of dot products). No learned weights.
2. `scaled_dot_product_attention(q, k, v, mask)`: separate roles. A query asks, keys
   answer, values are what gets averaged: softmax(q k^T / sqrt(d_k) + mask) v. Dividing by
   sqrt(d_k) keeps the scores' variance near 1 whatever the head size, so the softmax does
   not saturate. Masked scores become -inf, so their weight exp(-inf) is exactly 0.
3. Masks say which keys each query may see (causal, padding, sliding window, sparse).
4. `SingleHeadSelfAttention`: q, k, v are learned projections x W_q, x W_k, x W_v.
5. `MultiHeadAttention`: n_head attentions side by side on d_model / n_head channels each,
   batched as (B, n_head, T, d_head) and mixed by an output projection; self- or
   cross-attention, with a KV cache for decoding one token at a time.
6. `ring_attention`: the same result computed block by block with an online softmax, the
   way a sequence too long for one device is shared among many.

Mask convention, everywhere: a boolean array, True = "this query may attend to this key",
broadcastable to the scores' shape (B, n_head, T_q, T_k); a (T_q, T_k) mask applies to every
batch element and head. A query whose keys are all masked gets an output of zeros (and a
zero gradient), never NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import Function, Tensor, concatenate, is_grad_enabled, split
from minigrad import functional as F
from minigrad.nn import Linear, Module, RngLike, make_rng
from transformer import _fast_attention
from transformer.positional import RotaryEmbedding


# ===================================================================== 1. the simplest form
def dot_product_attention(x: Tensor, mask: Any = None, return_weights: bool = False) -> Any:
    """Weight-free self-attention: softmax(x x^T / sqrt(C)) x.   x (B, T, C) -> (B, T, C).

    Every position is its own query, key and value: the output at t is a weighted average
    of all x[s], with weights growing with the similarity x[t] . x[s]. With nothing to
    learn, a position tends to attend most to itself; the learned projections of step 4 let a
    query look for something other than itself. With `return_weights`, also the (B, T, T)
    weights, for plotting.
    """
    return scaled_dot_product_attention(x, x, x, mask, return_weights=return_weights)


# ===================================================================== 2. masks
# Each function returns a boolean (T, T) array: row i is query i, column j is key j, and
# True means query i may attend to key j.


def _check_length(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def causal_mask(T: int, T_k: int | None = None) -> np.ndarray:
    """Query i may attend to key j iff j <= i: no position sees the future.  (T, T_k) bool.

    With T_k > T (decoding with a KV cache) the T queries are the last T of the T_k
    positions: query i sits at position T_k - T + i and sees keys j <= T_k - T + i.
    """
    _check_length("T", T, 1)
    T_k = T if T_k is None else T_k
    _check_length("T_k", T_k, T)
    return np.tri(T, T_k, k=T_k - T, dtype=bool)


def sliding_window_mask(T: int, window: int) -> np.ndarray:
    """Causal and local: query i sees keys i - window < j <= i (itself and window - 1 before).

    (T, T) bool. Used by Longformer and Mistral; the cost per query is `window`, not T.
    """
    _check_length("T", T, 1)
    _check_length("window", window, 1)
    i, j = np.ogrid[:T, :T]
    return (j <= i) & (j > i - window)


def strided_mask(T: int, stride: int) -> np.ndarray:
    """The strided pattern of Child et al. 2019 (Sparse Transformers), causal.  (T, T) bool.

    Query i sees key j <= i iff (i - j) < stride (the local window of the last `stride`
    positions, itself included) or (i - j) % stride == 0 (every stride-th position back).
    Two such layers connect any two positions: one hop along the stride, one inside a window.
    """
    _check_length("T", T, 1)
    _check_length("stride", stride, 1)
    i, j = np.ogrid[:T, :T]
    distance = i - j
    return (distance >= 0) & ((distance < stride) | (distance % stride == 0))


def fixed_mask(T: int, stride: int, c: int) -> np.ndarray:
    """The fixed pattern of Child et al. 2019 (Sparse Transformers), causal.  (T, T) bool.

    Positions are cut into blocks of `stride`. Query i sees key j <= i iff j is in the same
    block (j // stride == i // stride) or j is one of the last c positions of its block
    (j % stride >= stride - c): those "summary" positions carry each block to later ones.
    """
    _check_length("T", T, 1)
    _check_length("stride", stride, 1)
    if not isinstance(c, (int, np.integer)) or not 1 <= c <= stride:
        raise ValueError(f"fixed_mask needs 1 <= c <= stride, got c={c!r}, stride={stride}")
    i, j = np.ogrid[:T, :T]
    same_block = j // stride == i // stride
    summary = j % stride >= stride - c
    return (j <= i) & (same_block | summary)


def padding_mask(
    lengths_or_ids: Any, pad_id: int | None = None, T: int | None = None
) -> np.ndarray:
    """Hide padding keys: shape (B, 1, 1, T), True at real tokens, ready to broadcast.

    Either token ids (B, T) with `pad_id` (keys equal to pad_id are masked), or lengths (B,)
    (key j of sequence b is real iff j < lengths[b]; T defaults to the longest length).
    Only keys are masked: padded queries still get an output, which the loss ignores.
    """
    a = np.asarray(lengths_or_ids.data if isinstance(lengths_or_ids, Tensor) else lengths_or_ids)
    if pad_id is not None:
        if a.ndim != 2:
            raise ValueError(f"padding_mask with pad_id needs ids of shape (B, T), got {a.shape}")
        real = a != pad_id  # (B, T)
    else:
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise ValueError(
                f"padding_mask needs integer lengths of shape (B,), got shape {a.shape} and "
                f"dtype {a.dtype} (for token ids pass pad_id=)"
            )
        T = int(a.max(initial=0)) if T is None else T
        if a.size and (a.min() < 0 or a.max() > T):
            raise ValueError(f"padding_mask: lengths {a.tolist()} must lie in [0, T={T}]")
        real = np.arange(T) < a[:, None]  # (B, T)
    return real[:, None, None, :]  # (B, 1, 1, T): every head, every query


def as_mask(mask: Any, scores_shape: tuple[int, ...]) -> np.ndarray:
    """Check that `mask` is boolean and broadcasts to the scores' shape; return it as an array."""
    m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if m.dtype != bool:
        raise ValueError(
            f"attention masks are boolean (True = may attend), got dtype {m.dtype}; "
            "use a comparison such as ids != pad_id"
        )
    try:
        shape = np.broadcast_shapes(m.shape, scores_shape)
    except ValueError:
        shape = None
    if shape != tuple(scores_shape):
        raise ValueError(
            f"mask of shape {m.shape} does not broadcast to the attention scores' shape "
            f"{tuple(scores_shape)} (B, n_head, T_q, T_k)"
        )
    return m


# ===================================================================== 3. scaled dot-product
def attention_from_primitives(q: Tensor, k: Tensor, v: Tensor, mask: Any = None) -> Tensor:
    """softmax(q k^T / sqrt(d_k) + mask) v, written with minigrad's primitive ops.

    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v) -> (..., T_q, d_v). This is the
    formula as it reads; `scaled_dot_product_attention` computes the same in one fused node.
    """
    d_k = q.shape[-1]
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~as_mask(mask, scores.shape), -math.inf)
    weights = F.softmax(scores, axis=-1)  # (..., T_q, T_k), each row sums to 1 (or is all 0)
    return weights @ v  # (..., T_q, d_v)


class ScaledDotProductAttention(Function):
    """Y = P' V, with S = Q K^T / sqrt(d_k) (-inf where masked), P = softmax(S) over keys and
    P' = P * keep / (1 - p) under attention dropout (P' = P without).

    With G = dL/dY:  dL/dV = P'^T G;  dL/dP = (G V^T) * keep / (1 - p);
    dL/dS = P * (dL/dP - rowsum(dL/dP * P));  dL/dQ = dL/dS K / sqrt(d_k);
    dL/dK = dL/dS^T Q / sqrt(d_k). Masked entries have P = 0, hence dL/dS = 0: no -inf ever
    enters the backward, and a fully masked row passes back exactly zero.

    `causal` masks every key after the query's position (the T_q queries are the last T_q
    of the T_k positions), on top of `mask`.

    P is kept as E = exp(S - c) and its row sums z (P = E / z), so that the normalization
    is applied to the narrow (T_q, d) arrays instead of the (T_q, T_k) ones, and a long
    causal attention is computed in blocks of queries that skip the keys they may not see
    (`transformer/_fast_attention.py`, beside the formulas as written here).
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, dropout_p, rng, weights_out, causal=False, out=None):
        scale = 1 / math.sqrt(q.shape[-1])
        keep = None  # keep / (1 - p)
        if dropout_p > 0:
            shape = (*np.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])
            keep = (rng.random(shape) >= dropout_p) * np.asarray(1 / (1 - dropout_p), q.dtype)
        y, saved = _fast_attention.attend(q, k, v, scale, mask, causal, keep, out)  # P' V
        if weights_out is not None:
            weights_out.append(_fast_attention.attention_weights(saved, k.shape[-2]))  # P
        ctx.save_for_backward(q, k, v, saved, keep)
        ctx.scale = scale
        return y  # (..., T_q, d_v)

    @staticmethod
    def backward(ctx, grad):
        q, k, v, saved, keep = ctx.saved
        needs = ctx.needs_input_grad
        return _fast_attention.attend_backward(grad, q, k, v, saved, ctx.scale, keep, needs)


def _check_causal(is_causal: bool, T_q: int, T_k: int) -> None:
    if is_causal and T_k < T_q:
        raise ValueError(
            f"is_causal needs at least as many keys as queries (the queries are the last "
            f"T_q of the T_k positions), got T_q={T_q}, T_k={T_k}"
        )


def _check_dropout(dropout_p: float, rng: np.random.Generator | None) -> None:
    if not 0 <= dropout_p < 1:
        raise ValueError(f"attention dropout probability must be in [0, 1), got {dropout_p}")
    if dropout_p > 0 and rng is None:
        raise ValueError("attention dropout needs rng=np.random.default_rng(seed)")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Any = None,
    dropout_p: float = 0.0,
    rng: np.random.Generator | None = None,
    return_weights: bool = False,
    is_causal: bool = False,
) -> Tensor | tuple[Tensor, np.ndarray]:
    """softmax(q k^T / sqrt(d_k) + mask) v, as one node with a closed-form backward.

    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v) -> (..., T_q, d_v), e.g. with
    leading axes (B, n_head). `mask` is boolean, True = may attend, broadcastable to
    (..., T_q, T_k); masked scores are set to -inf before the softmax, and a query with no
    visible key gets zeros. `is_causal` also hides the keys after each query's position
    (`causal_mask(T_q, T_k)`, computed faster). `dropout_p` > 0 drops attention weights
    (needs `rng`). With `return_weights`, also returns the attention weights
    (..., T_q, T_k) as a NumPy array (before dropout), for plotting.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"attention needs q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v); "
            f"got q {q.shape}, k {k.shape}, v {v.shape}"
        )
    _check_causal(is_causal, q.shape[-2], k.shape[-2])
    if mask is not None:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        mask = as_mask(mask, (*batch, q.shape[-2], k.shape[-2]))
    _check_dropout(dropout_p, rng)
    weights_out: list[np.ndarray] | None = [] if return_weights else None
    out = ScaledDotProductAttention.apply(
        q, k, v, mask=mask, causal=is_causal, dropout_p=dropout_p, rng=rng,
        weights_out=weights_out,
    )  # fmt: skip
    return (out, weights_out[0]) if return_weights else out


def heads_of(qkv: np.ndarray, n_head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q, k, v (B, n_head, T, d_head): strided views of qkv (B, T, 3C) = [q | k | v], where
    head h owns channels h * d_head : (h + 1) * d_head of each part. Nothing is copied."""
    B, T, three_C = qkv.shape
    heads = qkv.reshape(B, T, 3, n_head, three_C // (3 * n_head)).transpose(2, 0, 3, 1, 4)
    return heads[0], heads[1], heads[2]  # each (B, n_head, T, d_head)


class SelfAttention(Function):
    """Multi-head self-attention read from the fused projection:  qkv (B, T, 3C) -> Y (B, T, C).

    qkv = [Q | K | V]; per head, the formulas of ScaledDotProductAttention, and head h writes
    channels h * d_head : (h + 1) * d_head of Y;  dL/dqkv = [dL/dQ | dL/dK | dL/dV].
    The heads are strided views of qkv, Y and dL/dqkv (`heads_of`), so nothing is split,
    merged or copied, and dL/dqkv is written in place instead of being summed from three
    zero-padded slices, as splitting qkv into three tensors would need.
    """

    @staticmethod
    def forward(ctx, qkv, n_head, mask, causal, dropout_p, rng, weights_out):
        q, k, v = heads_of(qkv, n_head)  # (B, n_head, T, d_head) each
        B, _, T, d_head = q.shape
        y = np.empty((B, T, n_head, d_head), qkv.dtype)
        heads_out = y.transpose(0, 2, 1, 3)  # (B, n_head, T, d_head), a view of y
        ScaledDotProductAttention.forward(
            ctx, q, k, v, mask, dropout_p, rng, weights_out, causal=causal, out=heads_out
        )
        ctx.n_head, ctx.qkv_shape = n_head, qkv.shape
        return y.reshape(B, T, n_head * d_head)  # (B, T, C), the heads side by side

    @staticmethod
    def backward(ctx, grad):
        q, k, v, saved, keep = ctx.saved
        B, T, C = grad.shape
        grad_heads = grad.reshape(B, T, ctx.n_head, C // ctx.n_head).transpose(0, 2, 1, 3)
        grad_qkv = np.empty(ctx.qkv_shape, grad.dtype)  # (B, T, 3C)
        out = heads_of(grad_qkv, ctx.n_head)  # dQ, dK, dV are written into its views
        _fast_attention.attend_backward(grad_heads, q, k, v, saved, ctx.scale, keep, out=out)
        return grad_qkv


def self_attention(
    qkv: Tensor,
    n_head: int,
    mask: Any = None,
    dropout_p: float = 0.0,
    rng: np.random.Generator | None = None,
    return_weights: bool = False,
    is_causal: bool = False,
) -> Tensor | tuple[Tensor, np.ndarray]:
    """Multi-head self-attention on a fused projection's output:  qkv (B, T, 3C) -> (B, T, C).

    The same as splitting qkv into q, k, v, each into n_head heads (B, n_head, T, d_head),
    `scaled_dot_product_attention` on them and the heads merged back, in one node (see
    `SelfAttention`). `mask` broadcasts to (B, n_head, T, T); the other arguments are those
    of `scaled_dot_product_attention`.
    """
    if qkv.ndim != 3 or qkv.shape[-1] % (3 * n_head):
        raise ValueError(
            f"self_attention needs qkv of shape (B, T, 3 * C) with C divisible by "
            f"n_head={n_head}; got {qkv.shape}"
        )
    B, T, _ = qkv.shape
    if mask is not None:
        mask = as_mask(mask, (B, n_head, T, T))
    _check_dropout(dropout_p, rng)
    weights_out: list[np.ndarray] | None = [] if return_weights else None
    out = SelfAttention.apply(
        qkv, n_head=n_head, mask=mask, causal=is_causal, dropout_p=dropout_p, rng=rng,
        weights_out=weights_out,
    )  # fmt: skip
    return (out, weights_out[0]) if return_weights else out


# ===================================================================== 4. one learned head
class SingleHeadSelfAttention(Module):
    """Self-attention with learned projections:  x (B, T, C) -> (B, T, d_head).

    q = x W_q, k = x W_k, v = x W_v (each C -> d_head), then softmax(q k^T / sqrt(d_head)) v.
    A query can now look for something other than itself (a verb for its subject, say).
    """

    def __init__(
        self,
        d_model: int,
        d_head: int | None = None,
        bias: bool = False,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        rng = make_rng(rng)
        self.d_model = d_model
        self.d_head = d_model if d_head is None else d_head
        self.query = Linear(d_model, self.d_head, bias=bias, rng=rng, dtype=dtype)
        self.key = Linear(d_model, self.d_head, bias=bias, rng=rng, dtype=dtype)
        self.value = Linear(d_model, self.d_head, bias=bias, rng=rng, dtype=dtype)

    def forward(self, x: Tensor, mask: Any = None) -> Tensor:
        q, k, v = self.query(x), self.key(x), self.value(x)  # (B, T, d_head) each
        return scaled_dot_product_attention(q, k, v, mask)  # (B, T, d_head)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_head={self.d_head}"


# ===================================================================== 5. multi-head
class KVCache:
    """The keys and values of the positions already seen, for one attention layer.

    Decoding produces one token at a time; its query needs the keys and values of every
    earlier token, which do not change. Keeping them here means each step computes k and v
    for the new tokens only. `k` and `v` have shape (B, n_head, T_cached, d_head).
    For cross-attention the cache holds the keys and values of the encoder's memory,
    computed on the first call and reused afterwards.

    With a `capacity` (the longest sequence, a GPT's block_size), the first append allocates
    buffers (B, n_head, capacity, d_head) and each later one writes its positions into them:
    `k` and `v` are views of the filled part. Concatenating instead would copy the whole
    cache at every token. Appending concatenates beyond the capacity, and while gradients are
    recorded (the graph then runs through the cache).
    """

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity
        self.k: Tensor | None = None
        self.v: Tensor | None = None
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new positions' k, v (B, n_head, T_new, d_head); return all of them."""
        start, stop = len(self), len(self) + k.shape[-2]
        tracked = is_grad_enabled() and (k.requires_grad or v.requires_grad)
        if self.capacity is None or stop > self.capacity or tracked:
            self._buffers = None  # the next buffered append starts from what is cached now
            if self.k is None:
                self.k, self.v = k, v
            else:
                self.k = concatenate([self.k, k], axis=-2)  # (B, n_head, T_cached + T_new, d_head)
                self.v = concatenate([self.v, v], axis=-2)
            return self.k, self.v
        if self._buffers is None:
            shape = (*k.shape[:-2], self.capacity, k.shape[-1])  # (B, n_head, capacity, d_head)
            self._buffers = (np.empty(shape, k.dtype), np.empty(shape, v.dtype))
            if self.k is not None:  # positions cached before the buffers existed
                self._buffers[0][..., :start, :] = self.k.data
                self._buffers[1][..., :start, :] = self.v.data
        buffer_k, buffer_v = self._buffers
        buffer_k[..., start:stop, :] = k.data
        buffer_v[..., start:stop, :] = v.data
        self.k, self.v = Tensor(buffer_k[..., :stop, :]), Tensor(buffer_v[..., :stop, :])
        return self.k, self.v

    def select(self, rows: np.ndarray) -> None:
        """Keep the batch rows `rows` (B_new,) in that order: beam search follows its beams."""
        if self.k is not None:
            self.k, self.v = self.k[rows], self.v[rows]
            self._buffers = None  # the next append copies the kept rows into new buffers

    def reset(self) -> None:
        self.k = self.v = None
        self._buffers = None


class MultiHeadAttention(Module):
    """n_head attentions in parallel, each on d_head = d_model / n_head channels.

    x (B, T, C) -> (B, T, C), C = d_model. One head averages with one set of weights; many
    heads let each position gather several kinds of information at once. The heads are
    not a Python loop: the channels are reshaped to (B, n_head, T, d_head) and the batched
    matmuls of attention run over B and n_head together.

    Self-attention (default) projects q, k, v from x with one fused Linear(C, 3C).
    Cross-attention (`cross_attention=True`, the decoder attending to the encoder) projects
    q from x with Linear(C, C) and k, v from `memory` (B, S, d_memory) with Linear(d_memory, 2C).
    Weights: `qkv` or `query` + `key_value`, then `out` (C, C); in `qkv` the output rows are
    [q | k | v], and inside each, head h owns rows h * d_head : (h + 1) * d_head.

    `dropout` is applied to the attention weights while training. With `keep_weights` set
    (an attribute, for plots), each call stores the weights (B, n_head, T_q, T_k) as a NumPy
    array in `last_attention_weights`; otherwise nothing is kept.
    `rotary` (self-attention only) rotates q and k by their positions (RoPE).
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        *,
        cross_attention: bool = False,
        d_memory: int | None = None,
        bias: bool = True,
        dropout: float = 0.0,
        rotary: RotaryEmbedding | None = None,
        keep_weights: bool = False,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if not isinstance(n_head, (int, np.integer)) or n_head < 1 or d_model % n_head:
            raise ValueError(
                f"d_model={d_model} must be divisible by n_head={n_head} "
                "(each head gets d_model / n_head channels)"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"attention dropout must be in [0, 1), got {dropout}")
        if rotary is not None and cross_attention:
            raise ValueError("rotary embeddings are for self-attention, not cross-attention")
        rng = make_rng(rng)
        self.d_model, self.n_head, self.d_head = d_model, n_head, d_model // n_head
        self.cross_attention = cross_attention
        self.d_memory = d_model if d_memory is None else d_memory
        if cross_attention:
            self.query = Linear(d_model, d_model, bias=bias, rng=rng, dtype=dtype)
            self.key_value = Linear(self.d_memory, 2 * d_model, bias=bias, rng=rng, dtype=dtype)
        else:
            self.qkv = Linear(d_model, 3 * d_model, bias=bias, rng=rng, dtype=dtype)
        self.out = Linear(d_model, d_model, bias=bias, rng=rng, dtype=dtype)
        self.rotary = rotary
        self.dropout = dropout
        self.rng = rng
        self.keep_weights = keep_weights
        self.last_attention_weights: np.ndarray | None = None

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, n_head, T, d_head): each head gets its own d_head channels."""
        B, T, _ = x.shape
        return x.reshape(B, T, self.n_head, self.d_head).transpose(0, 2, 1, 3)

    def merge_heads(self, y: Tensor) -> Tensor:
        """(B, n_head, T, d_head) -> (B, T, C): the heads' outputs side by side again."""
        B, _, T, _ = y.shape
        return y.transpose(0, 2, 1, 3).reshape(B, T, self.d_model)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        mask: Any = None,
        causal: bool = False,
        cache: KVCache | None = None,
    ) -> Tensor:
        """x (B, T, C) -> (B, T, C).

        memory: (B, S, d_memory), the sequence to attend to (cross-attention only).
        mask: boolean, True = may attend, broadcastable to (B, n_head, T, T_k).
        causal: add the causal mask (query i sees keys up to its own position, counting the
            cached positions before it).
        cache: a KVCache, extended in place with this call's keys and values (self-attention)
            or holding the memory's keys and values (cross-attention).
        """
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"MultiHeadAttention(d_model={self.d_model}) needs x of shape (B, T, "
                f"{self.d_model}), got {x.shape}"
            )
        B, T, C = x.shape
        packed = False  # q, k, v still inside the fused projection's output (B, T, 3C)
        if self.cross_attention:
            q = self.split_heads(self.query(x))  # (B, n_head, T, d_head)
            if cache is not None and len(cache):
                k, v = cache.k, cache.v  # the memory's, from the first call
            else:
                if memory is None or memory.ndim != 3 or memory.shape[-1] != self.d_memory:
                    got = None if memory is None else memory.shape
                    raise ValueError(
                        f"cross-attention needs memory of shape (B, S, {self.d_memory}), got {got}"
                    )
                k, v = split(self.key_value(memory), 2, axis=-1)  # (B, S, C) each
                k, v = self.split_heads(k), self.split_heads(v)  # (B, n_head, S, d_head)
                if cache is not None:
                    cache.append(k, v)
            T_k = k.shape[-2]
        else:
            if memory is not None:
                raise ValueError("self-attention takes no memory; use cross_attention=True")
            if cache is not None and not causal:
                raise ValueError(
                    "a KV cache is for causal decoding: pass causal=True with cache= "
                    "(otherwise a prompt's tokens would see each other's future)"
                )
            qkv = self.qkv(x)  # (B, T, 3C)
            packed = cache is None and self.rotary is None  # then `self_attention` reads qkv
            if not packed:
                q, k, v = split(qkv, 3, axis=-1)  # (B, T, C) each
                q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
                offset = 0 if cache is None else len(cache)  # position of this call's first token
                if self.rotary is not None:
                    q, k = self.rotary(q, offset), self.rotary(k, offset)
                if cache is not None:
                    k, v = cache.append(k, v)  # (B, n_head, T_cached + T, d_head)
            T_k = T if packed else k.shape[-2]

        if mask is not None:
            mask = as_mask(mask, (B, self.n_head, T, T_k))
        dropout_p = self.dropout if self.training else 0.0
        settings = {"dropout_p": dropout_p, "rng": self.rng, "return_weights": self.keep_weights,
                    "is_causal": causal}  # fmt: skip
        if packed:
            y = self_attention(qkv, self.n_head, mask, **settings)  # (B, T, C)
        else:
            y = scaled_dot_product_attention(q, k, v, mask, **settings)  # (B, n_head, T, d_head)
        if self.keep_weights:
            y, self.last_attention_weights = y  # weights (B, n_head, T, T_k)
        if not packed:
            y = self.merge_heads(y)  # (B, T, C)
        return self.out(y)  # (B, T, C)

    def extra_repr(self) -> str:
        kind = "cross" if self.cross_attention else "self"
        return f"d_model={self.d_model}, n_head={self.n_head}, {kind}, dropout={self.dropout}"


# ===================================================================== 6. ring attention
def ring_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    n_blocks: int,
    causal: bool = False,
    return_lse: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Blockwise attention as in Ring Attention (Liu et al. 2023), simulated in one process.

    q, k, v (..., T, d) -> (..., T, d). The sequence is cut into `n_blocks` blocks, one per
    "device". Device i keeps its query block Q_i; the key/value blocks travel around the
    ring, so at step s device i holds block j = (i - s) mod n_blocks. No device ever holds
    the full (T, T) score matrix: it folds each block of scores S_ij = Q_i K_j^T / sqrt(d)
    into running statistics (the online softmax):

        m_new = max(m, rowmax(S_ij))                 running max (only for stability)
        l     = l * exp(m - m_new) + rowsum(exp(S_ij - m_new))      running sum
        acc   = acc * exp(m - m_new) + exp(S_ij - m_new) V_j        running numerator

    and at the end outputs acc / l, the exact softmax average. `causal`: the diagonal block
    j = i gets the causal mask, blocks j > i (the future) are skipped, j < i is all visible.
    With `return_lse`, also returns log sum_j exp(s_ij) per row (..., T) = m + log l, which
    is what a real implementation keeps for the backward pass. The running max m is a
    constant shift (the result does not depend on it), so gradients flow through l and acc.
    """
    T, d = q.shape[-2], q.shape[-1]
    if k.shape[-2] != T or v.shape[-2] != T:
        raise ValueError(
            f"ring_attention needs q, k, v of one length T; got {q.shape}, {k.shape}, {v.shape}"
        )
    if not isinstance(n_blocks, (int, np.integer)) or n_blocks < 1 or T % n_blocks:
        raise ValueError(f"sequence length T={T} must be divisible by n_blocks={n_blocks}")
    scale = 1 / math.sqrt(d)
    q_blocks = split(q, n_blocks, axis=-2)  # n_blocks x (..., T / n_blocks, d)
    k_blocks = split(k, n_blocks, axis=-2)
    v_blocks = split(v, n_blocks, axis=-2)
    block = T // n_blocks
    diagonal_hidden = ~causal_mask(block)  # (block, block), True above the diagonal

    outputs, log_sum_exps = [], []
    for i in range(n_blocks):  # each device, holding query block i
        q_i = q_blocks[i]
        row_shape = (*np.broadcast_shapes(q_i.shape[:-1], k_blocks[0].shape[:-1]), 1)
        m = np.full(row_shape, -np.inf, dtype=q.dtype)  # running max   (..., block, 1)
        l = Tensor(np.zeros(row_shape, dtype=q.dtype))  # running sum   (..., block, 1)
        acc = Tensor(np.zeros((*row_shape[:-1], v.shape[-1]), dtype=q.dtype))  # (..., block, d)
        for step in range(n_blocks):  # key/value block j arrives from the neighbour
            j = (i - step) % n_blocks
            if causal and j > i:
                continue  # a future block: nothing in it is visible
            scores = q_i @ k_blocks[j].swapaxes(-1, -2) * scale  # (..., block, block)
            if causal and j == i:
                scores = scores.masked_fill(diagonal_hidden, -math.inf)
            m_new = np.maximum(m, scores.data.max(axis=-1, keepdims=True))  # (..., block, 1)
            correction = np.exp(m - m_new)  # rescales what was summed under the old max
            p = (scores - m_new).exp()  # (..., block, block)
            l = l * correction + p.sum(axis=-1, keepdims=True)
            acc = acc * correction + p @ v_blocks[j]  # (..., block, d)
            m = m_new
        outputs.append(acc / l)
        log_sum_exps.append(l.log() + m)  # (..., block, 1)
    out = concatenate(outputs, axis=-2)  # (..., T, d)
    if not return_lse:
        return out
    lse = concatenate(log_sum_exps, axis=-2)  # (..., T, 1)
    return out, lse.reshape(lse.shape[:-1])  # (..., T)
