"""Before transformers: recurrent and convolutional character-level language models.

The same task as GPT's (predict every next token of a window), the same call
(`logits, loss = model(idx, targets)`, targets of -1 left out), and the same checkpoints,
command line and generation, so the comparison is run rather than told.

Read top to bottom:

1. `RecurrentConfig` and the recurrent models: ids (B, T) -> token embedding -> a stack of
   RNN, LSTM or GRU layers -> layer norm -> linear head -> logits (B, T, vocab_size).
   Position t's hidden state summarises tokens 0..t; computing it needs step t - 1 first,
   so the positions are computed one after another. `RNNLanguageModel`,
   `LSTMLanguageModel` and `GRULanguageModel` differ only in their cell.
2. `ConvConfig` and `ConvLanguageModel`: ids (B, T) -> token embedding -> n_layer residual
   blocks, each a causal dilated convolution -> layer norm -> linear head. Every position is
   computed at once, but each sees only its last `receptive_field` tokens; doubling the
   dilation at each layer makes that window grow exponentially with depth.

Layers start as PyTorch's do (minigrad.nn's defaults) except the head, which starts as
GPT's does (normal(0, 0.02), bias 0) so that the first predictions are near uniform (a loss
of ln vocab_size). `Model(config, rng=seed)` always builds the same weights. `block_size`
is the length of the training windows and the context generation keeps; the models
themselves read a sequence of any length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from minigrad import Tensor
from minigrad import functional as F
from minigrad.nn import (
    GRU,
    LSTM,
    RNN,
    Conv1d,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    ModuleList,
    RngLike,
    make_rng,
)
from transformer.models import IGNORE_INDEX, _Config, check_ids, check_targets


# ===================================================================== shared pieces
def next_token_loss(logits: Tensor, targets: Any) -> Tensor:
    """Mean cross-entropy of logits (B, T, V) against targets (B, T), -1 left out (as GPT)."""
    targets = check_targets(targets, logits.shape[:2], logits.shape[2])
    return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)


def small_head(head: Linear, rng: np.random.Generator) -> Linear:
    """`head` with weights ~ N(0, 0.02^2) and bias 0: logits start near 0, probabilities near
    uniform, whatever the scale of the hidden states."""
    head.weight.data[...] = rng.normal(0.0, 0.02, head.weight.shape)
    head.bias.data[...] = 0
    return head


def _check_dropout(config: Any) -> None:
    if not 0 <= config.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")


# ===================================================================== 1. recurrent
@dataclass
class RecurrentConfig(_Config):
    """The shape of an RNN, LSTM or GRU language model (the cell is the model's class).

    vocab_size      tokens in the vocabulary
    block_size      the training windows' length, and the context generation keeps
    n_embd          the token embedding's width (the first layer's input_size)
    hidden_size     the recurrent state's width H
    n_layer         stacked recurrent layers, each reading the h_t of the one below
    dropout         on the embeddings, between recurrent layers and before the head
    """

    vocab_size: int = 256
    block_size: int = 64
    n_embd: int = 64
    hidden_size: int = 128
    n_layer: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self._positive("vocab_size", "block_size", "n_embd", "hidden_size", "n_layer")
        _check_dropout(self)


class RecurrentLanguageModel(Module):
    """ids (B, T) -> logits (B, T, vocab_size) through a stack of recurrent layers.

    `logits, loss = model(idx, targets)` as GPT's. `hidden_states(idx, state)` also returns
    the final state, and continues from a given one: feeding a text in pieces, state carried
    over, gives the same hidden states as feeding it whole (generation's cache).
    Sub-modules: `token_embedding` (V, n_embd), `recurrent` (the cell, batch first),
    `ln_final` (H,), `lm_head` Linear(H, V).
    """

    cell: type = RNN  # the recurrent layer: RNN, LSTM or GRU from minigrad.nn

    def __init__(
        self, config: RecurrentConfig, rng: RngLike = None, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        if not isinstance(config, RecurrentConfig):
            raise TypeError(f"{type(self).__name__} needs a RecurrentConfig, got "
                            f"{type(config).__name__}")  # fmt: skip
        rng = make_rng(rng)
        self.config = config
        V, C, H = config.vocab_size, config.n_embd, config.hidden_size
        self.token_embedding = Embedding(V, C, rng=rng, dtype=dtype)
        self.dropout = Dropout(config.dropout, rng=rng)
        self.recurrent = self.cell(C, H, config.n_layer, batch_first=True,
                                   dropout=config.dropout, rng=rng, dtype=dtype)  # fmt: skip
        self.ln_final = LayerNorm(H, dtype=dtype)
        self.lm_head = small_head(Linear(H, V, rng=rng, dtype=dtype), rng)

    def hidden_states(self, idx: Any, state: Any = None) -> tuple[Tensor, Any]:
        """(B, T) ids and the state after earlier tokens (zeros if None) -> the normalised
        last layer's h_t (B, T, H) and the state after the last token: h_n (n_layer, B, H),
        or (h_n, c_n) for the LSTM."""
        idx = check_ids(idx, self.config.vocab_size, "idx")
        x = self.dropout(self.token_embedding(idx))  # (B, T, n_embd)
        h, state = self.recurrent(x, state)  # (B, T, H): a Python loop over the T positions
        return self.ln_final(self.dropout(h)), state

    def head(self, x: Tensor) -> Tensor:
        """Logits over the vocabulary:  (B, T, H) -> (B, T, vocab_size)."""
        return self.lm_head(x)

    def forward(self, idx: Any, targets: Any = None) -> tuple[Tensor, Tensor | None]:
        logits = self.head(self.hidden_states(idx)[0])  # (B, T, vocab_size)
        return logits, None if targets is None else next_token_loss(logits, targets)


class RNNLanguageModel(RecurrentLanguageModel):
    """The plain (Elman) tanh RNN: h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)."""

    cell = RNN


class LSTMLanguageModel(RecurrentLanguageModel):
    """The LSTM: a gated cell state that gradients can cross many steps along."""

    cell = LSTM


class GRULanguageModel(RecurrentLanguageModel):
    """The GRU: an update gate mixing the old state with a candidate."""

    cell = GRU


# ===================================================================== 2. convolutional
@dataclass
class ConvConfig(_Config):
    """The shape of a causal convolutional language model (a WaveNet / TCN-like stack).

    vocab_size      tokens in the vocabulary
    block_size      the training windows' length, and the context generation keeps
    n_embd          channels C, through every block
    n_layer         residual blocks, each one causal convolution
    kernel_size     taps K of each convolution
    dilation_base   block l's dilation is dilation_base ** l (1: no dilation)
    dropout         on the embeddings and on each block's output
    """

    vocab_size: int = 256
    block_size: int = 64
    n_embd: int = 64
    n_layer: int = 4
    kernel_size: int = 3
    dilation_base: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self._positive("vocab_size", "block_size", "n_embd", "n_layer", "kernel_size",
                       "dilation_base")  # fmt: skip
        _check_dropout(self)

    @property
    def dilations(self) -> list[int]:
        return [self.dilation_base**layer for layer in range(self.n_layer)]

    @property
    def receptive_field(self) -> int:
        """How many tokens (the last included) can reach one output: each block widens the
        window by dilation * (K - 1), so 1 + (K - 1) * sum of the dilations. Every token of
        the window reaches it when dilation_base <= K; a larger base leaves holes."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)


class ConvBlock(Module):
    """x + Linear(gelu(causal_conv(LayerNorm(x)))):  (B, T, C) -> (B, T, C).

    The convolution mixes positions (output t sees t, t - d, ..., t - d (K - 1)); the linear
    layer mixes channels at each position; the residual lets each block add to the stream.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float,
                 rng: np.random.Generator, dtype: Any) -> None:  # fmt: skip
        super().__init__()
        self.ln = LayerNorm(channels, dtype=dtype)
        self.conv = Conv1d(channels, channels, kernel_size, dilation=dilation, causal=True,
                           rng=rng, dtype=dtype)  # fmt: skip
        self.mix = Linear(channels, channels, rng=rng, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(self.ln(x).transpose(0, 2, 1)).transpose(0, 2, 1)  # (B, T, C)
        return x + self.dropout(self.mix(F.gelu(h)))


class ConvLanguageModel(Module):
    """ids (B, T) -> logits (B, T, vocab_size) through stacked causal dilated convolutions.

    `logits, loss = model(idx, targets)` as GPT's. All positions are computed in parallel;
    logits[:, t] depend on tokens t - receptive_field + 1 .. t only (zeros before the
    start). Sub-modules: `token_embedding` (V, C), `blocks` (n_layer ConvBlocks, dilations
    1, base, base^2, ...), `ln_final` (C,), `lm_head` Linear(C, V).
    """

    def __init__(self, config: ConvConfig, rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        if not isinstance(config, ConvConfig):
            raise TypeError(f"ConvLanguageModel needs a ConvConfig, got {type(config).__name__}")
        rng = make_rng(rng)
        self.config = config
        V, C = config.vocab_size, config.n_embd
        self.token_embedding = Embedding(V, C, rng=rng, dtype=dtype)
        self.dropout = Dropout(config.dropout, rng=rng)
        self.blocks = ModuleList(
            ConvBlock(C, config.kernel_size, dilation, config.dropout, rng, dtype)
            for dilation in config.dilations
        )
        self.ln_final = LayerNorm(C, dtype=dtype)
        self.lm_head = small_head(Linear(C, V, rng=rng, dtype=dtype), rng)

    def hidden_states(self, idx: Any) -> Tensor:
        """The last block's output, normalised:  (B, T) -> (B, T, C)."""
        idx = check_ids(idx, self.config.vocab_size, "idx")
        if idx.shape[1] == 0:
            raise ValueError(f"idx of shape {idx.shape} is empty")
        x = self.dropout(self.token_embedding(idx))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C): every position at once
        return self.ln_final(x)

    def head(self, x: Tensor) -> Tensor:
        """Logits over the vocabulary:  (B, T, C) -> (B, T, vocab_size)."""
        return self.lm_head(x)

    def forward(self, idx: Any, targets: Any = None) -> tuple[Tensor, Tensor | None]:
        logits = self.head(self.hidden_states(idx))  # (B, T, vocab_size)
        return logits, None if targets is None else next_token_loss(logits, targets)
