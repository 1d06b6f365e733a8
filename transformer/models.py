"""Three models from the same blocks: a GPT, a BERT-shaped encoder, an encoder-decoder.

Read top to bottom:

1. `GPTConfig` and `GPT`, the decoder-only language model:
       ids (B, T) -> token embedding + positions -> n_layer causal blocks -> final layer norm
       -> LM head (tied to the token embedding) -> logits (B, T, vocab_size).
   Every position predicts the next token, all in one parallel pass; a KV cache lets
   generation feed one new token at a time.
2. `EncoderConfig` and `EncoderModel`, BERT's shape: token + position + segment embeddings,
   post-LN blocks that see the whole sequence (padding hidden), a classification head on
   the [CLS] position or on the mean over real tokens, and mean pooling for sentence
   embeddings.
3. `EncoderDecoderConfig` and `EncoderDecoder`, the original Transformer's shape for
   translation-style tasks: the encoder reads the source once; the decoder writes the target
   from a start token to an end token, attending to its own past and, through
   cross-attention, to the encoder's output.

Every config is a dataclass that checks its values when made and round-trips through JSON
(`to_dict` / `from_dict`), which is how checkpoints store it. Weights start as GPT-2's and
BERT's do: normal(0, 0.02), biases 0, and in GPT the projections that write into the
residual stream scaled by 1 / sqrt(2 n_layer), so the stream's variance does not grow
with depth.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from minigrad import Tensor
from minigrad import functional as F
from minigrad.nn import (
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    ModuleList,
    RngLike,
    make_rng,
)
from transformer.attention import (
    KVCache,
    MultiHeadAttention,
    fixed_mask,
    sliding_window_mask,
    strided_mask,
)
from transformer.blocks import DecoderBlock, EncoderBlock
from transformer.feedforward import ACTIVATIONS, MoE
from transformer.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)

POSITIONS = ("learned", "sinusoidal", "rope")
ATTENTION_PATTERNS = ("full", "sliding_window", "strided", "fixed")
NORMS = ("pre", "post")
IGNORE_INDEX = -1  # a target of -1 is left out of the loss (padding, prompt tokens)


# ===================================================================== shared pieces
class _Config:
    """Checks and JSON for the config dataclasses below."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """The config from `to_dict`'s output; an unknown key is an error that names it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no setting {', '.join(map(repr, unknown))}")
        return cls(**values)

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def _one_of(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")

    def _check_common(self) -> None:
        """What every model's config shares: sizes, heads, dropout, activation, norm."""
        self._positive("vocab_size", "block_size", "n_head", "n_embd")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} must be divisible by n_head={self.n_head} "
                "(each head gets n_embd / n_head channels)"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self._one_of("activation", ACTIVATIONS)
        self._one_of("norm", NORMS)
        if self.ffn_hidden is not None:
            self._positive("ffn_hidden")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps}")


def check_ids(ids: Any, vocab_size: int, name: str = "ids") -> np.ndarray:
    """Token ids as an integer array (B, T), every one in [0, vocab_size), or a ValueError."""
    ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if ids.ndim != 2 or (ids.size and ids.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be integer token ids of shape (B, T), got {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)].flat[0]
        raise ValueError(f"{name} holds token id {bad}, outside the vocabulary [0, {vocab_size})")
    return ids


def check_targets(targets: Any, shape: tuple[int, ...], n_classes: int) -> np.ndarray:
    """Integer targets of `shape`, each a class in [0, n_classes) or IGNORE_INDEX."""
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if targets.shape != shape or (targets.size and targets.dtype.kind not in "iu"):
        raise ValueError(f"targets must be integers of shape {shape}, got {targets.shape}")
    targets = targets.astype(np.int64, copy=False)
    if targets.size and (targets.min() < IGNORE_INDEX or targets.max() >= n_classes):
        raise ValueError(
            f"targets must lie in [0, {n_classes}) (or be {IGNORE_INDEX} to be ignored), "
            f"got values from {targets.min()} to {targets.max()}"
        )
    return targets


def init_weights(model: Module, rng: np.random.Generator, residual_scale: float = 1.0) -> None:
    """GPT-2 / BERT initialization: every Linear and Embedding weight ~ N(0, 0.02^2), biases
    0 (layer norms keep 1 and 0). Projections back into the residual stream (attention `out`,
    FFN `down`, the experts' `w_down`) get std 0.02 * residual_scale."""
    std = 0.02
    for name, module in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        scale = residual_scale if last in ("out", "down") else 1.0
        if isinstance(module, (Linear, Embedding, LearnedPositionalEmbedding)):
            weight = module.weight.data
            weight[...] = rng.normal(0.0, std * scale, weight.shape)
            if getattr(module, "bias", None) is not None:
                module.bias.data[...] = 0
        elif isinstance(module, MoE):
            for param, s in ((module.w_up, 1.0), (module.w_down, residual_scale)):
                param.data[...] = rng.normal(0.0, std * s, param.shape)
            module.b_up.data[...] = 0
            module.b_down.data[...] = 0


def keep_attention_weights(model: Module, keep: bool = True) -> None:
    """Make every attention layer of `model` keep its weights (B, n_head, T_q, T_k) in
    `last_attention_weights` after each call, for plots (off by default: they cost memory)."""
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.keep_weights = keep
            if not keep:
                module.last_attention_weights = None


def _block_settings(config: Any, dtype: Any) -> dict[str, Any]:
    """The keywords every block of a model gets from its config."""
    return {
        "ffn_hidden": config.ffn_hidden,
        "dropout": config.dropout,
        "norm": config.norm,
        "activation": config.activation,
        "bias": config.bias,
        "eps": config.layer_norm_eps,
        "dtype": dtype,
    }


# ===================================================================== 1. GPT
@dataclass
class GPTConfig(_Config):
    """The shape of a GPT (nanoGPT's names).

    vocab_size, block_size   tokens in the vocabulary; the longest context (T <= block_size)
    n_layer, n_head, n_embd  blocks, heads per attention, channels C (d_model)
    ffn_hidden               the FFN's width, 4 * n_embd by default
    dropout                  on embeddings, attention weights and sublayer outputs
    bias                     biases in the linear layers (the layer norms keep theirs)
    activation               "gelu_tanh" (GPT-2), "gelu" (exact) or "relu"
    position                 "learned" (GPT-2), "sinusoidal" or "rope"
    attention                "full" causal, or a sparse causal pattern: "sliding_window"
                             (the last `attention_window` tokens), "strided" or "fixed"
                             (Child et al. 2019, with `attention_stride`; "fixed" also
                             keeps the last `attention_summary` positions of each block)
    n_experts, top_k         n_experts > 0 replaces every FFN by a mixture of experts
    capacity_factor          the experts' capacity (None: no token is dropped)
    aux_loss_weight          weight of the MoE load-balancing loss added to the loss
    z_loss_weight            weight of the MoE router z-loss added to the loss
    norm                     "pre" (GPT-2) or "post" layer norm
    tie_weights              the LM head reuses the token embedding (GPT-2)
    layer_norm_eps           the layer norms' epsilon
    """

    vocab_size: int = 256
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    ffn_hidden: int | None = None
    dropout: float = 0.0
    bias: bool = True
    activation: str = "gelu_tanh"
    position: str = "learned"
    attention: str = "full"
    attention_window: int = 16
    attention_stride: int = 8
    attention_summary: int = 1
    n_experts: int = 0
    top_k: int = 1
    capacity_factor: float | None = None
    aux_loss_weight: float = 0.01
    z_loss_weight: float = 0.001
    norm: str = "pre"
    tie_weights: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self._check_common()
        self._positive("n_layer", "attention_window", "attention_stride", "attention_summary")
        self._one_of("position", POSITIONS)
        self._one_of("attention", ATTENTION_PATTERNS)
        if self.position == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"position='rope' needs an even head size, got n_embd / n_head = "
                f"{self.n_embd // self.n_head}"
            )
        if self.attention == "fixed" and self.attention_summary > self.attention_stride:
            raise ValueError(
                f"attention_summary={self.attention_summary} must be at most "
                f"attention_stride={self.attention_stride}"
            )
        if self.n_experts < 0 or (self.n_experts and not 1 <= self.top_k <= self.n_experts):
            raise ValueError(
                f"need n_experts >= 0 and 1 <= top_k <= n_experts, got n_experts="
                f"{self.n_experts}, top_k={self.top_k}"
            )
        if self.capacity_factor is not None and not self.capacity_factor > 0:
            raise ValueError(f"capacity_factor must be positive, got {self.capacity_factor}")
        if self.aux_loss_weight < 0 or self.z_loss_weight < 0:
            raise ValueError("aux_loss_weight and z_loss_weight must be >= 0")

    def attention_pattern(self, T: int) -> np.ndarray | None:
        """Which keys each of T positions may see beyond causality: (T, T) bool, or None for
        full causal attention."""
        if self.attention == "sliding_window":
            return sliding_window_mask(T, self.attention_window)
        if self.attention == "strided":
            return strided_mask(T, self.attention_stride)
        if self.attention == "fixed":
            return fixed_mask(T, self.attention_stride, self.attention_summary)
        return None


class GPT(Module):
    """A decoder-only language model:  ids (B, T) -> logits (B, T, vocab_size).

    `logits, loss = model(idx, targets)`: the loss is the mean cross-entropy of predicting
    targets[b, t] (usually idx shifted left by one) from the logits at (b, t), targets of -1
    left out, plus the MoE's weighted auxiliary losses when the model has experts; without
    targets, loss is None. `cache=model.new_cache()` makes each call continue where the
    last one stopped (generation feeds one new token at a time).

    Sub-modules: `token_embedding` (vocab_size, C); `position` (learned or sinusoidal; None
    with RoPE, which lives in the attention); `blocks`, n_layer DecoderBlocks without
    cross-attention; `ln_final` (pre-LN only); `lm_head` (None when tied).
    `GPT(config, rng=seed)` always builds the same weights.
    """

    def __init__(self, config: GPTConfig, rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        rng = make_rng(rng)
        self.config = config
        V, C, L = config.vocab_size, config.n_embd, config.block_size
        self.token_embedding = Embedding(V, C, rng=rng, dtype=dtype)
        if config.position == "learned":
            self.position = LearnedPositionalEmbedding(L, C, rng=rng, dtype=dtype)
        elif config.position == "sinusoidal":
            self.position = SinusoidalPositionalEncoding(C)
        else:
            self.position = None
        rotary = RotaryEmbedding(C // config.n_head) if config.position == "rope" else None
        experts = {}
        if config.n_experts:
            experts = {"n_experts": config.n_experts, "top_k": config.top_k,
                       "capacity_factor": config.capacity_factor}  # fmt: skip
        self.dropout = Dropout(config.dropout, rng=rng)
        self.blocks = ModuleList(
            DecoderBlock(
                C,
                config.n_head,
                cross_attention=False,
                rotary=rotary,
                rng=rng,
                **experts,
                **_block_settings(config, dtype),
            )  # fmt: skip
            for _ in range(config.n_layer)
        )
        self.ln_final = (
            LayerNorm(C, eps=config.layer_norm_eps, dtype=dtype) if config.norm == "pre" else None
        )
        self.lm_head = None if config.tie_weights else Linear(C, V, bias=False, dtype=dtype)
        init_weights(self, rng, residual_scale=1 / math.sqrt(2 * config.n_layer))

    def new_cache(self) -> list[KVCache]:
        """An empty KV cache: one per block, with room for block_size positions."""
        return [KVCache(self.config.block_size) for _ in self.blocks]

    def hidden_states(self, idx: Any, cache: list[KVCache] | None = None) -> Tensor:
        """The final layer's output (after the final norm):  (B, T) -> (B, T, C)."""
        cfg = self.config
        idx = check_ids(idx, cfg.vocab_size, "idx")
        T = idx.shape[1]
        offset = 0 if cache is None else len(cache[0])  # positions already in the cache
        if offset + T > cfg.block_size:
            raise ValueError(
                f"sequence of length {offset + T} is longer than block_size={cfg.block_size} "
                f"(the longest context this model was built for)"
            )
        x = self.token_embedding(idx)  # (B, T, C)
        if self.position is not None:
            x = self.position(x, offset)  # (B, T, C)
        x = self.dropout(x)
        pattern = cfg.attention_pattern(offset + T)  # (T_k, T_k) or None
        mask = None if pattern is None else pattern[offset:]  # (T, T_k): this call's queries
        for i, block in enumerate(self.blocks):
            x = block(x, self_mask=mask, cache=None if cache is None else cache[i])
        return x if self.ln_final is None else self.ln_final(x)  # (B, T, C)

    def head(self, x: Tensor) -> Tensor:
        """Logits over the vocabulary:  (B, T, C) -> (B, T, vocab_size)."""
        if self.lm_head is None:
            return F.linear(x, self.token_embedding.weight)  # x W_e^T: the tied head
        return self.lm_head(x)

    def forward(
        self, idx: Any, targets: Any = None, cache: list[KVCache] | None = None
    ) -> tuple[Tensor, Tensor | None]:
        logits = self.head(self.hidden_states(idx, cache))  # (B, T, vocab_size)
        if targets is None:
            return logits, None
        targets = check_targets(targets, logits.shape[:2], self.config.vocab_size)
        loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
        if self.config.n_experts:
            loss = loss + self.auxiliary_loss()
        return logits, loss

    def auxiliary_loss(self) -> Tensor:
        """The MoE losses of the last call, averaged over blocks and weighted by the config."""
        cfg = self.config
        aux = sum(block.aux_loss for block in self.blocks) / len(self.blocks)
        z = sum(block.z_loss for block in self.blocks) / len(self.blocks)
        return aux * cfg.aux_loss_weight + z * cfg.z_loss_weight


# ===================================================================== 2. BERT-shaped encoder
@dataclass
class EncoderConfig(_Config):
    """The shape of an encoder-only model (BERT's names in brackets).

    vocab_size, block_size   tokens in the vocabulary; the longest input [max_position_embeddings]
    n_layer, n_head, n_embd  blocks, heads, channels C [hidden_size]
    ffn_hidden               the FFN's width [intermediate_size], 4 * n_embd by default
    type_vocab_size          segments (sentence A / B) [type_vocab_size]
    pad_id                   the padding token, hidden from attention and from pooling
    n_classes                outputs of the classification head (0: no head)
    pooling                  what the head reads: "cls" (the first position) or "mean"
    """

    vocab_size: int = 256
    block_size: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    ffn_hidden: int | None = None
    dropout: float = 0.1
    bias: bool = True
    activation: str = "gelu"
    norm: str = "post"
    type_vocab_size: int = 2
    pad_id: int = 0
    n_classes: int = 0
    pooling: str = "cls"
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        self._check_common()
        self._positive("n_layer", "type_vocab_size")
        self._one_of("pooling", ("cls", "mean"))
        if self.n_classes < 0:
            raise ValueError(f"n_classes must be >= 0, got {self.n_classes}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id={self.pad_id} is outside the vocabulary")


def mean_pool(hidden: Tensor, real: np.ndarray) -> Tensor:
    """The mean of hidden (B, T, C) over the real (unpadded) positions, real (B, T) bool."""
    weights = real.astype(hidden.dtype)[:, :, None]  # (B, T, 1)
    counts = np.maximum(weights.sum(axis=1), 1)  # (B, 1)
    return (hidden * weights).sum(axis=1) / counts  # (B, C)


class EncoderModel(Module):
    """BERT's shape:  ids (B, T) -> hidden states (B, T, C), and a classifier on top.

    Embeddings: token + learned position + segment, then a layer norm and dropout (BERT
    normalizes the sum before the first block). Then n_layer EncoderBlocks, each position
    seeing every real position (padding is masked out as keys). With `n_classes` > 0,
    `logits, loss = model(ids, targets)` classifies each sequence from the [CLS] position
    or the mean over real positions; `sentence_embedding` mean-pools the hidden states.

    `attention_mask` (B, T), True (or 1) at real tokens, defaults to ids != pad_id;
    `segment_ids` (B, T) default to 0.
    """

    def __init__(self, config: EncoderConfig, rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise TypeError(f"EncoderModel needs an EncoderConfig, got {type(config).__name__}")
        rng = make_rng(rng)
        self.config = config
        C = config.n_embd
        self.token_embedding = Embedding(config.vocab_size, C, rng=rng, dtype=dtype)
        self.position = LearnedPositionalEmbedding(config.block_size, C, rng=rng, dtype=dtype)
        self.segment_embedding = Embedding(config.type_vocab_size, C, rng=rng, dtype=dtype)
        self.ln_embedding = LayerNorm(C, eps=config.layer_norm_eps, dtype=dtype)
        self.dropout = Dropout(config.dropout, rng=rng)
        self.blocks = ModuleList(
            EncoderBlock(C, config.n_head, rng=rng, **_block_settings(config, dtype))
            for _ in range(config.n_layer)
        )
        self.ln_final = (
            LayerNorm(C, eps=config.layer_norm_eps, dtype=dtype) if config.norm == "pre" else None
        )
        self.classifier = Linear(C, config.n_classes, dtype=dtype) if config.n_classes else None
        init_weights(self, rng)

    def real_tokens(self, ids: np.ndarray, attention_mask: Any = None) -> np.ndarray:
        """(B, T) bool, True at real tokens: the given mask, or ids != pad_id."""
        if attention_mask is None:
            return ids != self.config.pad_id
        real = np.asarray(attention_mask)
        if real.shape != ids.shape:
            raise ValueError(
                f"attention_mask must have the ids' shape {ids.shape}, got {real.shape}"
            )
        return real.astype(bool)

    def hidden_states(
        self, ids: Any, segment_ids: Any = None, attention_mask: Any = None
    ) -> Tensor:
        """(B, T) ids -> (B, T, C), every position having seen every real position."""
        cfg = self.config
        ids = check_ids(ids, cfg.vocab_size)
        if ids.shape[1] > cfg.block_size:
            raise ValueError(
                f"sequence of length {ids.shape[1]} is longer than block_size={cfg.block_size}"
            )
        segments = np.zeros_like(ids) if segment_ids is None else segment_ids
        segments = check_ids(segments, cfg.type_vocab_size, "segment_ids")
        if segments.shape != ids.shape:
            raise ValueError(f"segment_ids must have the ids' shape {ids.shape}")
        real = self.real_tokens(ids, attention_mask)  # (B, T)
        x = self.token_embedding(ids) + self.segment_embedding(segments)  # (B, T, C)
        x = self.dropout(self.ln_embedding(self.position(x)))
        keys = real[:, None, None, :]  # (B, 1, 1, T): every head and query skips padding
        for block in self.blocks:
            x = block(x, mask=keys)
        return x if self.ln_final is None else self.ln_final(x)  # (B, T, C)

    def sentence_embedding(
        self, ids: Any, segment_ids: Any = None, attention_mask: Any = None
    ) -> Tensor:
        """The mean of the hidden states over real tokens:  (B, T) -> (B, C)."""
        ids = check_ids(ids, self.config.vocab_size)
        hidden = self.hidden_states(ids, segment_ids, attention_mask)
        return mean_pool(hidden, self.real_tokens(ids, attention_mask))

    def forward(
        self, ids: Any, targets: Any = None, segment_ids: Any = None, attention_mask: Any = None
    ) -> tuple[Tensor, Tensor | None]:
        """Class logits (B, n_classes) and the mean cross-entropy against targets (B,)."""
        if self.classifier is None:
            raise ValueError(
                "this EncoderModel has no classification head (n_classes=0); "
                "use hidden_states or sentence_embedding"
            )
        ids = check_ids(ids, self.config.vocab_size)
        hidden = self.hidden_states(ids, segment_ids, attention_mask)  # (B, T, C)
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]  # (B, C): the first token, [CLS], has seen them all
        else:
            pooled = mean_pool(hidden, self.real_tokens(ids, attention_mask))  # (B, C)
        logits = self.classifier(self.dropout(pooled))  # (B, n_classes)
        if targets is None:
            return logits, None
        targets = check_targets(targets, (ids.shape[0],), self.config.n_classes)
        return logits, F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)


# ===================================================================== 3. encoder-decoder
@dataclass
class EncoderDecoderConfig(_Config):
    """The shape of an encoder-decoder (the original Transformer's names in brackets).

    vocab_size          one vocabulary shared by source and target (and one embedding table)
    block_size          the longest source and the longest target
    n_encoder_layer     encoder blocks [N]
    n_decoder_layer     decoder blocks [N]
    n_head, n_embd      heads [h], channels C [d_model]
    ffn_hidden          the FFN's width [d_ff], 4 * n_embd by default
    position            "sinusoidal" (the original) or "learned"
    pad_id, bos_id, eos_id   padding, start-of-target and end-of-target tokens
    """

    vocab_size: int = 32
    block_size: int = 32
    n_encoder_layer: int = 2
    n_decoder_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    ffn_hidden: int | None = None
    dropout: float = 0.0
    bias: bool = True
    activation: str = "relu"
    norm: str = "pre"
    position: str = "sinusoidal"
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self._check_common()
        self._positive("n_encoder_layer", "n_decoder_layer")
        self._one_of("position", ("sinusoidal", "learned"))
        specials = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        for name, value in specials.items():
            if not 0 <= value < self.vocab_size:
                raise ValueError(f"{name}={value} is outside the vocabulary [0, {self.vocab_size})")
        if len(set(specials.values())) < 3:
            raise ValueError(f"pad_id, bos_id and eos_id must differ, got {specials}")


class EncoderDecoder(Module):
    """Source ids (B, S) and target ids (B, T) -> next-target-token logits (B, T, vocab_size).

    `memory = model.encode(src)` runs the encoder once (B, S, C); `model.decode(tgt, memory,
    src)` runs the decoder, each target position seeing earlier target positions and every
    real source position. `logits, loss = model(src, tgt, targets)`: tgt starts with bos_id
    (the targets shifted right), targets end with eos_id; pad_id in targets is not scored.
    The token embedding is shared by encoder, decoder and output head, and multiplied by
    sqrt(C) before the positions are added (as in the original).
    """

    def __init__(
        self, config: EncoderDecoderConfig, rng: RngLike = None, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        if not isinstance(config, EncoderDecoderConfig):
            raise TypeError(
                f"EncoderDecoder needs an EncoderDecoderConfig, got {type(config).__name__}"
            )
        rng = make_rng(rng)
        self.config = config
        C = config.n_embd
        self.token_embedding = Embedding(config.vocab_size, C, rng=rng, dtype=dtype)
        if config.position == "learned":
            self.position = LearnedPositionalEmbedding(config.block_size, C, rng=rng, dtype=dtype)
        else:
            self.position = SinusoidalPositionalEncoding(C)
        self.dropout = Dropout(config.dropout, rng=rng)
        settings = _block_settings(config, dtype)
        self.encoder_blocks = ModuleList(
            EncoderBlock(C, config.n_head, rng=rng, **settings)
            for _ in range(config.n_encoder_layer)
        )
        self.decoder_blocks = ModuleList(
            DecoderBlock(C, config.n_head, rng=rng, **settings)
            for _ in range(config.n_decoder_layer)
        )
        eps = config.layer_norm_eps
        pre = config.norm == "pre"
        self.ln_encoder = LayerNorm(C, eps=eps, dtype=dtype) if pre else None
        self.ln_decoder = LayerNorm(C, eps=eps, dtype=dtype) if pre else None
        init_weights(self, rng)
        self.token_embedding.weight.data[...] = rng.normal(0.0, C**-0.5, (config.vocab_size, C))

    def embed(self, ids: np.ndarray, offset: int = 0) -> Tensor:
        """sqrt(C) * token embedding + position:  (B, T) -> (B, T, C)."""
        x = self.token_embedding(ids) * math.sqrt(self.config.n_embd)
        return self.dropout(self.position(x, offset))

    def _check_length(self, ids: np.ndarray, name: str, offset: int = 0) -> None:
        if offset + ids.shape[1] > self.config.block_size:
            raise ValueError(
                f"{name} of length {offset + ids.shape[1]} is longer than "
                f"block_size={self.config.block_size}"
            )

    def source_mask(self, src: Any) -> np.ndarray:
        """(B, 1, 1, S): True at real source tokens, for every head and query."""
        src = check_ids(src, self.config.vocab_size, "src")
        return (src != self.config.pad_id)[:, None, None, :]

    def encode(self, src: Any) -> Tensor:
        """The encoder:  src (B, S) -> memory (B, S, C)."""
        src = check_ids(src, self.config.vocab_size, "src")
        self._check_length(src, "src")
        x = self.embed(src)
        mask = self.source_mask(src)
        for block in self.encoder_blocks:
            x = block(x, mask=mask)
        return x if self.ln_encoder is None else self.ln_encoder(x)  # (B, S, C)

    def new_cache(self) -> list[tuple[KVCache, KVCache]]:
        """An empty cache: per decoder block, (self-attention cache with room for block_size
        positions, cross-attention cache)."""
        return [(KVCache(self.config.block_size), KVCache()) for _ in self.decoder_blocks]

    def decode(
        self,
        tgt: Any,
        memory: Tensor,
        src: Any,
        cache: list[tuple[KVCache, KVCache]] | None = None,
    ) -> Tensor:
        """The decoder and the tied head:  tgt (B, T), memory (B, S, C) -> logits (B, T, V).

        `src` (B, S) is the source the memory came from (for its padding mask).
        """
        tgt = check_ids(tgt, self.config.vocab_size, "tgt")
        offset = 0 if cache is None else len(cache[0][0])
        self._check_length(tgt, "tgt", offset)
        x = self.embed(tgt, offset)  # (B, T, C)
        memory_mask = self.source_mask(src)
        for i, block in enumerate(self.decoder_blocks):
            self_cache, cross_cache = (None, None) if cache is None else cache[i]
            x = block(x, memory, memory_mask=memory_mask, cache=self_cache, cross_cache=cross_cache)
        if self.ln_decoder is not None:
            x = self.ln_decoder(x)
        return F.linear(x, self.token_embedding.weight)  # (B, T, vocab_size)

    def forward(self, src: Any, tgt: Any, targets: Any = None) -> tuple[Tensor, Tensor | None]:
        logits = self.decode(tgt, self.encode(src), src)  # (B, T, vocab_size)
        if targets is None:
            return logits, None
        targets = check_targets(targets, logits.shape[:2], self.config.vocab_size)
        targets = np.where(targets == self.config.pad_id, IGNORE_INDEX, targets)
        return logits, F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
