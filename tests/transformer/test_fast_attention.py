"""The few-pass attention kernels compute what the formulas beside them compute: outputs and
all three gradients, with and without masks and dropout, causal in one piece and in blocks
of queries (shrunk here to 2 rows, so that small shapes take that path), for fully masked
rows, for scores that take the shifted exp, and when writing into strided views of a
packed (B, T, 3C) array."""

import numpy as np
import pytest

from transformer import _fast_attention as fa
from transformer.attention import causal_mask, heads_of, padding_mask

B, H, T, D = 2, 3, 7, 4
MASKS = {
    "none": None,
    "causal mask": causal_mask(T),
    "padding, one row empty": padding_mask(np.array([T, 0]), T=T),
}


@pytest.fixture(params=[2, 64], ids=["causal in blocks", "causal in one piece"])
def causal_block(request, monkeypatch):
    monkeypatch.setattr(fa, "CAUSAL_BLOCK", request.param)
    return request.param


def random(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def qkv(seed, T_q=T, T_k=T, scale=1.0, k_batch=(B, H)):
    q = random((B, H, T_q, D), seed, scale)
    return q, random((*k_batch, T_k, D), seed + 1, scale), random((*k_batch, T_k, D), seed + 2)


def both(q, k, v, mask=None, causal=False, keep=None, scale=D**-0.5, seed=4):
    """(fast, plain) tuples of (Y, dQ, dK, dV) for a fixed random G."""
    y, saved = fa.attend(q, k, v, scale, mask, causal, keep)
    y0, weights = fa.attend_plain(q, k, v, scale, mask, causal, keep)
    grad = random(y.shape, seed).astype(y.dtype)
    fast = fa.attend_backward(grad, q, k, v, saved, scale, keep)
    plain = fa.attend_backward_plain(grad, q, k, v, weights, scale, keep)
    weights_fast = fa.attention_weights(saved, k.shape[-2])
    tol = 1e-12 if q.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(weights_fast, weights, rtol=tol, atol=tol / 1000)  # probabilities
    return (y, *fast), (y0, *plain)


def assert_pairs_agree(pairs, rtol=1e-12, atol=1e-14):
    for fast, plain in zip(*pairs):
        assert fast.shape == plain.shape and fast.dtype == plain.dtype
        np.testing.assert_allclose(fast, plain, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", MASKS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_the_kernels_agree_with_the_formulas(name, causal, dropout, causal_block):
    keep = None
    if dropout:
        keep = (np.random.default_rng(5).random((B, H, T, T)) >= 0.3) / 0.7
    assert_pairs_agree(both(*qkv(1), MASKS[name], causal, keep))


@pytest.mark.parametrize("T_q", [1, 3, 5], ids=["one query", "three", "five"])
def test_causal_queries_that_follow_cached_keys_agree(T_q, causal_block):
    assert_pairs_agree(both(*qkv(6, T_q=T_q, T_k=T), causal=True))


def test_keys_and_values_shared_across_the_batch_agree(causal_block):
    assert_pairs_agree(both(*qkv(7, k_batch=(1, H)), causal=True))


def test_a_fully_masked_row_gives_zeros_and_zero_gradients():
    (y, grad_q, grad_k, grad_v), _ = both(*qkv(8), MASKS["padding, one row empty"])
    for array in (y[1], grad_q[1], grad_k[1], grad_v[1]):
        assert np.all(array == 0)


def test_scores_too_large_to_exponentiate_take_the_shifted_path_and_still_agree(causal_block):
    pairs = both(*qkv(9, scale=30.0), causal=True, scale=10.0)
    assert all(np.all(np.isfinite(fast)) for fast in pairs[0])
    assert_pairs_agree(pairs, rtol=1e-10, atol=1e-12)


def test_float32_stays_float32(causal_block):
    q, k, v = (a.astype(np.float32) for a in qkv(12))
    for fast, plain in zip(*both(q, k, v, causal=True)):
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-5)


def test_only_the_needed_gradients_are_computed(causal_block):
    q, k, v = qkv(13)
    _, saved = fa.attend(q, k, v, 0.5, causal=True)
    grads = fa.attend_backward(
        random((B, H, T, D), 14), q, k, v, saved, 0.5, needs=(False,) * 2 + (True,)
    )
    assert grads[0] is None and grads[1] is None and grads[2].shape == v.shape


def test_outputs_can_be_written_into_the_heads_of_a_packed_array(causal_block):
    packed = random((B, T, 3 * H * D), 15)
    q, k, v = heads_of(packed, H)
    assert q.shape == (B, H, T, D) and np.shares_memory(q, packed)
    np.testing.assert_array_equal(v[1, 2, 3], packed[1, 3, 2 * H * D + 2 * D : 2 * H * D + 3 * D])
    y_merged = np.empty((B, T, H, D))
    _, saved = fa.attend(q, k, v, D**-0.5, causal=True, out=y_merged.transpose(0, 2, 1, 3))
    grad = random((B, H, T, D), 16)
    grad_packed = np.full_like(packed, np.nan)  # every entry must be written
    fa.attend_backward(grad, q, k, v, saved, D**-0.5, out=heads_of(grad_packed, H))
    y0, weights = fa.attend_plain(q, k, v, D**-0.5, causal=True)
    np.testing.assert_allclose(y_merged.transpose(0, 2, 1, 3), y0, rtol=1e-12)
    plain = fa.attend_backward_plain(grad, q, k, v, weights, D**-0.5)
    merged = [g.transpose(0, 2, 1, 3).reshape(B, T, H * D) for g in plain]  # (B, T, C) each
    np.testing.assert_allclose(grad_packed, np.concatenate(merged, axis=-1), rtol=1e-12, atol=1e-14)


def test_long_causal_attention_is_cut_into_blocks_and_short_is_not():
    q, k, v = qkv(17, T_q=2 * fa.CAUSAL_BLOCK, T_k=2 * fa.CAUSAL_BLOCK)
    assert len(fa.attend(q, k, v, 0.5, causal=True)[1]) == 2
    assert len(fa.attend(q[..., :-1, :], k, v, 0.5, causal=True)[1]) == 1
    assert len(fa.attend(q, k, v, 0.5, causal_mask(2 * fa.CAUSAL_BLOCK), causal=True)[1]) == 1
