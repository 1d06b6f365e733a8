"""Hand-written transformer layers and models on minigrad.

Read in this order: `attention` (from a weighted average to multi-head attention),
`positional` (sinusoidal, learned, rotary), `feedforward` (FFN and mixture of experts),
`blocks` (encoder and decoder blocks, pre-LN and post-LN), `models` (GPT, a BERT-shaped
encoder, an encoder-decoder). `baselines` holds what came before: RNN, LSTM, GRU and causal
convolutional language models with the GPT's interface.
"""

from transformer.attention import (
    KVCache,
    MultiHeadAttention,
    ScaledDotProductAttention,
    SelfAttention,
    SingleHeadSelfAttention,
    attention_from_primitives,
    causal_mask,
    dot_product_attention,
    fixed_mask,
    padding_mask,
    ring_attention,
    scaled_dot_product_attention,
    self_attention,
    sliding_window_mask,
    strided_mask,
)
from transformer.baselines import (
    ConvConfig,
    ConvLanguageModel,
    GRULanguageModel,
    LSTMLanguageModel,
    RecurrentConfig,
    RNNLanguageModel,
)
from transformer.blocks import DecoderBlock, EncoderBlock
from transformer.feedforward import FeedForward, MoE
from transformer.models import (
    GPT,
    EncoderConfig,
    EncoderDecoder,
    EncoderDecoderConfig,
    EncoderModel,
    GPTConfig,
    keep_attention_weights,
)
from transformer.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    rotate_half,
    rotate_pairs,
    sinusoidal_encoding,
)

__all__ = [
    "ConvConfig",
    "ConvLanguageModel",
    "GRULanguageModel",
    "LSTMLanguageModel",
    "RNNLanguageModel",
    "RecurrentConfig",
    "DecoderBlock",
    "EncoderBlock",
    "EncoderConfig",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "EncoderModel",
    "GPT",
    "GPTConfig",
    "FeedForward",
    "KVCache",
    "LearnedPositionalEmbedding",
    "MoE",
    "MultiHeadAttention",
    "RotaryEmbedding",
    "ScaledDotProductAttention",
    "SelfAttention",
    "SingleHeadSelfAttention",
    "SinusoidalPositionalEncoding",
    "apply_rotary",
    "attention_from_primitives",
    "causal_mask",
    "dot_product_attention",
    "fixed_mask",
    "keep_attention_weights",
    "padding_mask",
    "ring_attention",
    "rotate_half",
    "rotate_pairs",
    "scaled_dot_product_attention",
    "self_attention",
    "sinusoidal_encoding",
    "sliding_window_mask",
    "strided_mask",
]
