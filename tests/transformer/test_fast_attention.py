"""The few-pass attention kernels compute what the formulas beside them compute: outputs and
all three gradients, with and without masks and dropout, for fully masked rows, for scores
that take the shifted exp, and when writing into strided views of a packed (B, T, 3C) array."""

import numpy as np
import pytest

from transformer import _fast_attention as fa
from transformer.attention import causal_mask, heads_of, padding_mask

B, H, T, D = 2, 3, 6, 4
MASKS = {
    "none": None,
    "causal": causal_mask(T),
    "padding, one row empty": padding_mask(np.array([6, 0]), T=T),
}


def random(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def both(q, k, v, mask, keep=None, scale=None, seed=4):
    """(fast, plain) pairs of (Y, dQ, dK, dV) for a fixed random G."""
    scale = D**-0.5 if scale is None else scale
    y, e, total = fa.attend(q, k, v, scale, mask, keep)
    y0, weights = fa.attend_plain(q, k, v, scale, mask, keep)
    grad = random(y.shape, seed).astype(y.dtype)
    fast = fa.attend_backward(grad, q, k, v, e, total, scale, keep)
    plain = fa.attend_backward_plain(grad, q, k, v, weights, scale, keep)
    np.testing.assert_allclose(e / total, weights, rtol=1e-12, atol=1e-300)  # P = E / z
    return (y, *fast), (y0, *plain)


@pytest.mark.parametrize("name", MASKS)
@pytest.mark.parametrize("dropout", [False, True])
def test_the_kernels_agree_with_the_formulas(name, dropout):
    q, k, v = random((B, H, T, D), 1), random((B, H, T, D), 2), random((B, H, T, D), 3)
    keep = None
    if dropout:
        keep = (np.random.default_rng(5).random((B, H, T, T)) >= 0.3) / 0.7
    for fast, plain in zip(*both(q, k, v, MASKS[name], keep)):
        assert fast.dtype == plain.dtype == np.float64
        np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=1e-14)


def test_a_fully_masked_row_gives_zeros_and_zero_gradients():
    q, k, v = random((B, H, T, D), 6), random((B, H, T, D), 7), random((B, H, T, D), 8)
    (y, grad_q, grad_k, grad_v), _ = both(q, k, v, MASKS["padding, one row empty"])
    for array in (y[1], grad_q[1], grad_k[1], grad_v[1]):
        assert np.all(array == 0)


def test_scores_too_large_to_exponentiate_take_the_shifted_path_and_still_agree():
    q, k, v = (
        random((B, H, T, D), 9, 30.0),
        random((B, H, T, D), 10, 30.0),
        random((B, H, T, D), 11),
    )
    for fast, plain in zip(*both(q, k, v, causal_mask(T), scale=10.0)):
        assert np.all(np.isfinite(fast))
        np.testing.assert_allclose(fast, plain, rtol=1e-10, atol=1e-12)


def test_float32_stays_float32():
    q, k, v = (random((B, H, T, D), s).astype(np.float32) for s in (12, 13, 14))
    for fast, plain in zip(*both(q, k, v, causal_mask(T))):
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-5)


def test_outputs_can_be_written_into_the_heads_of_a_packed_array():
    qkv = random((B, T, 3 * H * D), 15)
    q, k, v = heads_of(qkv, H)
    assert q.shape == (B, H, T, D) and np.shares_memory(q, qkv)
    np.testing.assert_array_equal(v[1, 2, 3], qkv[1, 3, 2 * H * D + 2 * D : 2 * H * D + 3 * D])
    y_merged = np.empty((B, T, H, D))
    y, e, total = fa.attend(q, k, v, D**-0.5, causal_mask(T), out=y_merged.transpose(0, 2, 1, 3))
    grad = random(y.shape, 16)
    grad_qkv = np.empty_like(qkv)
    fa.attend_backward(grad, q, k, v, e, total, D**-0.5, out=heads_of(grad_qkv, H))
    y0, weights = fa.attend_plain(q, k, v, D**-0.5, causal_mask(T))
    np.testing.assert_allclose(y_merged.transpose(0, 2, 1, 3), y0, rtol=1e-12)
    plain = fa.attend_backward_plain(grad, q, k, v, weights, D**-0.5)
    merged = [g.transpose(0, 2, 1, 3).reshape(B, T, H * D) for g in plain]  # (B, T, C) each
    np.testing.assert_allclose(grad_qkv, np.concatenate(merged, axis=-1), rtol=1e-12, atol=1e-14)
