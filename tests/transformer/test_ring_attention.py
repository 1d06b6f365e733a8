"""Ring attention: block by block with an online softmax, the same numbers as full attention."""

import math

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, random_tensors
from transformer.attention import causal_mask, ring_attention, scaled_dot_product_attention


def full_log_sum_exp(q, k, causal):
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        scores = np.where(causal_mask(q.shape[-2]), scores, -np.inf)
    m = scores.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(scores - m).sum(axis=-1, keepdims=True)))[..., 0]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("n_blocks", [1, 2, 3, 4, 6, 12])
def test_ring_attention_equals_full_attention_including_the_log_sum_exp(n_blocks, causal):
    q, k, v = random_tensors((2, 2, 12, 4), (2, 2, 12, 4), (2, 2, 12, 4), seed=n_blocks)
    q.data *= 3  # peaked softmax rows: the running max really moves between blocks
    out, lse = ring_attention(q, k, v, n_blocks, causal=causal, return_lse=True)
    mask = causal_mask(12) if causal else None
    full = scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(out.data, full.data, rtol=0, atol=1e-10)
    assert lse.shape == (2, 2, 12)
    np.testing.assert_allclose(lse.data, full_log_sum_exp(q.data, k.data, causal), atol=1e-10)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_ring_attention_gradients_equal_full_attention_gradients(causal):
    q, k, v = random_tensors((1, 2, 6, 3), (1, 2, 6, 3), (1, 2, 6, 3), seed=30)
    weights = Tensor(np.random.default_rng(31).standard_normal((1, 2, 6, 3)))
    mask = causal_mask(6) if causal else None
    grads = []
    for fn in (
        lambda: ring_attention(q, k, v, 3, causal),
        lambda: scaled_dot_product_attention(q, k, v, mask),
    ):
        for t in (q, k, v):
            t.grad = None
        (fn() * weights).sum().backward()
        grads.append([t.grad.copy() for t in (q, k, v)])
    for ring_grad, full_grad in zip(*grads):
        np.testing.assert_allclose(ring_grad, full_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_ring_attention_gradcheck(causal):
    q, k, v = random_tensors((1, 1, 6, 3), (1, 1, 6, 3), (1, 1, 6, 3), seed=32)
    assert gradcheck(lambda q, k, v: ring_attention(q, k, v, 3, causal), q, k, v)


def test_ring_attention_log_sum_exp_gradcheck():
    q, k, v = random_tensors((1, 4, 2), (1, 4, 2), (1, 4, 2), seed=33)
    assert gradcheck(lambda q, k, v: ring_attention(q, k, v, 2, True, return_lse=True)[1], q, k, v)


def test_ring_attention_keeps_float32():
    q, k, v = (Tensor(t.data.astype(np.float32)) for t in random_tensors(*[(1, 8, 4)] * 3))
    out = ring_attention(q, k, v, 4, causal=True)
    assert out.dtype == np.float32
    expected = scaled_dot_product_attention(q, k, v, causal_mask(8)).data
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)


def test_a_sequence_that_does_not_split_into_blocks_is_a_value_error():
    q, k, v = random_tensors((1, 10, 4), (1, 10, 4), (1, 10, 4))
    with pytest.raises(ValueError, match=r"T=10 must be divisible by n_blocks=4"):
        ring_attention(q, k, v, 4)
