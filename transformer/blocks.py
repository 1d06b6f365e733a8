"""Transformer blocks: attention and feed-forward sublayers, each wrapped in a residual.

A block is a few sublayers, each used as  x -> x + sublayer(x): the residual connection
lets the signal (and the gradient) pass straight through a deep stack, with each sublayer
adding a correction. Layer normalization keeps the scale in check; where it goes is the
one design choice:

- post-LN (the original Transformer, BERT):  x = LayerNorm(x + dropout(sublayer(x)))
- pre-LN  (GPT-2 and most models since):     x = x + dropout(sublayer(LayerNorm(x)))

Pre-LN leaves the residual path untouched, which trains stably without warm-up tricks;
a pre-LN stack needs one final LayerNorm after the last block (the model's job).

Shapes use the (B, T, C) vocabulary: batch, time (sequence position), channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import Tensor
from minigrad.nn import Dropout, LayerNorm, Module, RngLike, make_rng
from transformer.attention import KVCache, MultiHeadAttention
from transformer.feedforward import FeedForward, MoE
from transformer.positional import RotaryEmbedding


class _Block(Module):
    """The sublayers in order (self-attention, cross-attention if any, FFN or MoE), each with
    its LayerNorm, and the residual rule that wraps them. Settings are keywords:

    ffn_hidden       the FFN's width (4 * d_model by default)
    dropout          on the attention weights and on each sublayer's output, while training
    norm             "pre" (GPT-2) or "post" (the original Transformer, BERT)
    activation       the FFN's: "relu", "gelu" (exact) or "gelu_tanh"
    bias             biases in the attention projections and the FFN
    n_experts        replace the FFN by a mixture of experts, with `top_k`, `capacity_factor`
    rotary           a RotaryEmbedding for the self-attention's q and k (RoPE)
    cross_attention  add a cross-attention sublayer over a memory of width `d_memory`
    eps              the layer norms' epsilon
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        *,
        ffn_hidden: int | None = None,
        dropout: float = 0.0,
        norm: str = "pre",
        activation: str = "gelu",
        bias: bool = True,
        n_experts: int | None = None,
        top_k: int = 1,
        capacity_factor: float | None = None,
        rotary: RotaryEmbedding | None = None,
        cross_attention: bool = False,
        d_memory: int | None = None,
        eps: float = 1e-5,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' (GPT-2) or 'post' (original, BERT), got {norm!r}")
        rng = make_rng(rng)
        self.d_model, self.norm = d_model, norm
        attention = {"dropout": dropout, "bias": bias, "rng": rng, "dtype": dtype}
        self.self_attn = MultiHeadAttention(d_model, n_head, rotary=rotary, **attention)
        self.ln_self_attn = LayerNorm(d_model, eps=eps, dtype=dtype)
        self.has_cross_attention = cross_attention
        if cross_attention:
            self.cross_attn = MultiHeadAttention(
                d_model, n_head, cross_attention=True, d_memory=d_memory, **attention
            )
            self.ln_cross_attn = LayerNorm(d_model, eps=eps, dtype=dtype)
        ffn = {"hidden": ffn_hidden, "activation": activation, "rng": rng, "dtype": dtype}
        if n_experts is None:
            self.ffn: Module = FeedForward(d_model, bias=bias, **ffn)
        else:
            self.ffn = MoE(d_model, n_experts, top_k, capacity_factor=capacity_factor, **ffn)
        self.ln_ffn = LayerNorm(d_model, eps=eps, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)  # on each sublayer's output

    def _residual(self, x: Tensor, norm: LayerNorm, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        """x + sublayer(x) with the layer norm before (pre-LN) or after (post-LN)."""
        if self.norm == "pre":
            return x + self.dropout(sublayer(norm(x)))
        return norm(x + self.dropout(sublayer(x)))

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"{type(self).__name__}(d_model={self.d_model}) needs x of shape "
                f"(B, T, {self.d_model}), got {x.shape}"
            )

    @property
    def aux_loss(self) -> Tensor | None:
        """The MoE's load-balancing loss from the last call (None with a plain FFN)."""
        return self.ffn.aux_loss if isinstance(self.ffn, MoE) else None

    @property
    def z_loss(self) -> Tensor | None:
        """The MoE's router z-loss from the last call (None with a plain FFN)."""
        return self.ffn.z_loss if isinstance(self.ffn, MoE) else None


class EncoderBlock(_Block):
    """Bidirectional self-attention, then FFN (or MoE):  x (B, T, C) -> (B, T, C).

    Every position sees every other (BERT, the Transformer's encoder); `mask` (True = may
    attend, e.g. `padding_mask(...)` of shape (B, 1, 1, T)) hides padding. Settings are the
    keywords of `_Block` (no cross-attention). Sublayers: `self_attn` + `ln_self_attn`,
    `ffn` + `ln_ffn`.
    """

    def __init__(self, d_model: int, n_head: int, **settings: Any) -> None:
        if settings.get("cross_attention"):
            raise ValueError("an EncoderBlock has no cross-attention; use a DecoderBlock")
        super().__init__(d_model, n_head, **settings)

    def forward(self, x: Tensor, mask: Any = None) -> Tensor:
        self._check_input(x)
        x = self._residual(x, self.ln_self_attn, lambda h: self.self_attn(h, mask=mask))
        return self._residual(x, self.ln_ffn, self.ffn)  # (B, T, C)


class DecoderBlock(_Block):
    """Causal self-attention, cross-attention to the encoder's memory, then FFN (or MoE).

    x (B, T, C), memory (B, S, d_memory) -> (B, T, C). With `cross_attention=False` there is
    no memory and the block is GPT's. Settings are the keywords of `_Block`. Sublayers:
    `self_attn` + `ln_self_attn`, `cross_attn` + `ln_cross_attn`, `ffn` + `ln_ffn`.
    """

    def __init__(
        self, d_model: int, n_head: int, *, cross_attention: bool = True, **settings: Any
    ) -> None:
        super().__init__(d_model, n_head, cross_attention=cross_attention, **settings)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        self_mask: Any = None,
        memory_mask: Any = None,
        causal: bool = True,
        cache: KVCache | None = None,
        cross_cache: KVCache | None = None,
    ) -> Tensor:
        """x (B, T, C) -> (B, T, C).

        memory: the encoder's output (B, S, d_memory); required with cross-attention
            (unless `cross_cache` already holds its keys and values).
        self_mask: extra mask for self-attention (True = may attend), e.g. padding.
        memory_mask: mask for cross-attention, broadcastable to (B, n_head, T, S).
        causal: hide future positions in self-attention (default True).
        cache, cross_cache: KVCaches for incremental decoding (see MultiHeadAttention).
        """
        self._check_input(x)
        if not self.has_cross_attention and memory is not None:
            raise ValueError("this DecoderBlock has no cross-attention; it takes no memory")
        x = self._residual(
            x,
            self.ln_self_attn,
            lambda h: self.self_attn(h, mask=self_mask, causal=causal, cache=cache),
        )
        if self.has_cross_attention:
            if memory is None and (cross_cache is None or len(cross_cache) == 0):
                raise ValueError("DecoderBlock with cross-attention needs memory (B, S, d_memory)")
            x = self._residual(
                x,
                self.ln_cross_attn,
                lambda h: self.cross_attn(h, memory, mask=memory_mask, cache=cross_cache),
            )
        return self._residual(x, self.ln_ffn, self.ffn)  # (B, T, C)
