"""Encoder and decoder blocks: residual structure, LN placement, causality, cache, gradients."""

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, no_grad, random_tensors
from minigrad import functional as F
from transformer.attention import KVCache, padding_mask
from transformer.blocks import DecoderBlock, EncoderBlock
from transformer.feedforward import MoE


def zero_sublayer_outputs(block):
    """Make every sublayer output exactly 0, leaving only the residual path and the norms."""
    for module in block.modules():
        for name in ("out", "down"):
            linear = getattr(module, name, None)
            if linear is not None and hasattr(linear, "weight"):
                linear.weight.data[...] = 0
                linear.bias.data[...] = 0


# ------------------------------------------------------------------ gradient checks
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_encoder_block_gradcheck(norm):
    block = EncoderBlock(8, 2, ffn_hidden=8, norm=norm, rng=0, dtype=np.float64)
    (x,) = random_tensors((2, 3, 8), seed=60)
    mask = padding_mask(np.array([3, 2]))
    assert gradcheck(lambda x, *p: block(x, mask=mask), x, *block.parameters())


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_decoder_block_with_cross_attention_gradcheck(norm):
    block = DecoderBlock(8, 2, ffn_hidden=8, norm=norm, d_memory=6, rng=1, dtype=np.float64)
    x, memory = random_tensors((2, 3, 8), (2, 4, 6), seed=61)
    assert gradcheck(lambda x, m, *p: block(x, m), x, memory, *block.parameters())


def test_decoder_only_block_with_moe_gradcheck():
    block = DecoderBlock(
        8, 2, ffn_hidden=4, cross_attention=False, n_experts=3, top_k=2, rng=2, dtype=np.float64
    )
    (x,) = random_tensors((2, 3, 8), seed=62)
    assert isinstance(block.ffn, MoE)
    assert gradcheck(lambda x, *p: block(x), x, *block.parameters())
    assert block.aux_loss is block.ffn.aux_loss and block.z_loss is block.ffn.z_loss


# ------------------------------------------------------------------ structure
def test_pre_ln_block_with_silent_sublayers_is_the_identity():
    block = DecoderBlock(8, 2, norm="pre", rng=3, dtype=np.float64)
    zero_sublayer_outputs(block)
    x, memory = random_tensors((2, 3, 8), (2, 4, 8), seed=63)
    np.testing.assert_array_equal(block(x, memory).data, x.data)  # x + 0 + 0 + 0


def test_post_ln_block_normalizes_after_each_residual():
    block = DecoderBlock(8, 2, norm="post", rng=4, dtype=np.float64)
    x, memory = random_tensors((2, 3, 8), (2, 4, 8), seed=64)
    y = block(x, memory).data
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)  # the last operation is a LayerNorm
    np.testing.assert_allclose(y.var(-1), 1, rtol=1e-4)
    zero_sublayer_outputs(block)
    expected = F.layer_norm(F.layer_norm(F.layer_norm(x))).data  # one LN per sublayer
    np.testing.assert_allclose(block(x, memory).data, expected, rtol=1e-12, atol=1e-12)


def test_encoder_block_equals_its_formula_written_out():
    block = EncoderBlock(8, 2, ffn_hidden=8, norm="pre", rng=5, dtype=np.float64)
    (x,) = random_tensors((2, 3, 8), seed=65)
    h = x + block.self_attn(block.ln_self_attn(x))
    expected = h + block.ffn(block.ln_ffn(h))
    np.testing.assert_allclose(block(x).data, expected.data, rtol=1e-12)
    post = EncoderBlock(8, 2, ffn_hidden=8, norm="post", rng=5, dtype=np.float64)
    h = post.ln_self_attn(x + post.self_attn(x))
    np.testing.assert_allclose(post(x).data, post.ln_ffn(h + post.ffn(h)).data, rtol=1e-12)


def test_one_generator_gives_every_sublayer_its_own_weights():
    block = DecoderBlock(8, 2, rng=6)
    weights = [block.self_attn.out.weight.data, block.cross_attn.out.weight.data]
    assert not np.allclose(*weights)
    same = DecoderBlock(8, 2, rng=6)
    for (name, a), (_, b) in zip(block.named_parameters(), same.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


# ------------------------------------------------------------------ masks and causality
def test_decoder_block_output_never_depends_on_future_tokens():
    block = DecoderBlock(8, 2, rng=7, dtype=np.float64)
    rng = np.random.default_rng(66)
    x, memory = rng.standard_normal((2, 6, 8)), Tensor(rng.standard_normal((2, 4, 8)))
    base = block(Tensor(x), memory).data
    for t in range(6):
        changed = x.copy()
        changed[:, t] += rng.standard_normal((2, 8))
        out = block(Tensor(changed), memory).data
        np.testing.assert_array_equal(out[:, :t], base[:, :t])
        assert np.all(np.any(out[:, t:] != base[:, t:], axis=-1))


def test_encoder_block_ignores_padding_keys():
    block = EncoderBlock(8, 2, rng=8, dtype=np.float64)
    rng = np.random.default_rng(67)
    x = rng.standard_normal((1, 5, 8))
    mask = padding_mask(np.array([3]), T=5)
    base = block(Tensor(x), mask=mask).data
    x[:, 3:] = rng.standard_normal((1, 2, 8))  # new values in the padding
    out = block(Tensor(x), mask=mask).data
    np.testing.assert_array_equal(out[:, :3], base[:, :3])
    assert not np.allclose(block(Tensor(x)).data[:, :3], base[:, :3])  # unmasked, it would see


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_incremental_decoding_through_a_block_equals_the_full_pass(norm):
    block = DecoderBlock(8, 2, norm=norm, rng=9, dtype=np.float64)
    x, memory = random_tensors((2, 5, 8), (2, 3, 8), seed=68, requires_grad=False)
    full = block(x, memory).data
    cache, cross_cache = KVCache(), KVCache()
    with no_grad():
        steps = [
            block(x[:, t : t + 1], memory if t == 0 else None, cache=cache, cross_cache=cross_cache)
            for t in range(5)
        ]
    incremental = np.concatenate([s.data for s in steps], axis=1)
    np.testing.assert_allclose(incremental, full, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ dropout and dtype
def test_dropout_acts_only_in_training_mode():
    block = EncoderBlock(8, 2, dropout=0.3, rng=10, dtype=np.float64)
    (x,) = random_tensors((2, 4, 8), seed=69)
    assert not np.allclose(block(x).data, block(x).data)
    block.eval()
    np.testing.assert_array_equal(block(x).data, block(x).data)
    no_dropout = EncoderBlock(8, 2, rng=10, dtype=np.float64)
    np.testing.assert_allclose(block(x).data, no_dropout(x).data, rtol=1e-12)


def test_blocks_keep_float32():
    block = DecoderBlock(8, 2, dropout=0.1, n_experts=2, rng=11)
    x = Tensor(np.random.default_rng(70).standard_normal((2, 3, 8)).astype(np.float32), True)
    memory = Tensor(np.random.default_rng(71).standard_normal((2, 4, 8)).astype(np.float32))
    y = block(x, memory)
    assert y.dtype == np.float32
    (y.sum() + block.aux_loss).backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in block.parameters())


# ------------------------------------------------------------------ bad input
def test_blocks_reject_bad_configurations_and_inputs_with_value_errors():
    with pytest.raises(ValueError, match=r"norm must be 'pre' .* got 'middle'"):
        EncoderBlock(8, 2, norm="middle")
    with pytest.raises(ValueError, match=r"d_model=8 must be divisible by n_head=3"):
        DecoderBlock(8, 3)
    with pytest.raises(ValueError, match=r"top_k=3 must be between 1 and n_experts=2"):
        EncoderBlock(8, 2, n_experts=2, top_k=3)
    x = Tensor(np.zeros((1, 2, 8), np.float32))
    with pytest.raises(ValueError, match="needs memory"):
        DecoderBlock(8, 2)(x)
    with pytest.raises(ValueError, match="no cross-attention"):
        DecoderBlock(8, 2, cross_attention=False)(x, x)
    with pytest.raises(ValueError, match=r"\(B, T, 8\), got \(1, 2, 4\)"):
        EncoderBlock(8, 2)(Tensor(np.zeros((1, 2, 4), np.float32)))
