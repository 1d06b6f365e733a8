"""Attention: the formula, masks, gradient checks, fused == composed, multi-head, KV cache."""

import math

import numpy as np
import pytest

from minigrad import Tensor, concatenate, gradcheck, no_grad, random_tensors, split
from transformer.attention import (
    KVCache,
    MultiHeadAttention,
    SingleHeadSelfAttention,
    attention_from_primitives,
    causal_mask,
    dot_product_attention,
    fixed_mask,
    padding_mask,
    scaled_dot_product_attention,
    self_attention,
    sliding_window_mask,
    strided_mask,
)
from transformer.positional import RotaryEmbedding

T = 5
MASKS = {
    "none": None,
    "causal": causal_mask(T),
    "sliding_window": sliding_window_mask(T, 2),
    "strided": strided_mask(T, 2),
    "fixed": fixed_mask(T, 2, 1),
    "padding": padding_mask(np.array([5, 3]), T=T),  # (B, 1, 1, T)
}


def numpy_attention(q, k, v, mask=None):
    """The formula written out in NumPy: softmax(q k^T / sqrt(d) + mask) v."""
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)) @ v


def gradients(fn, *inputs, seed=99):
    """Gradients of a fixed random weighting of fn's output, one array per input."""
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    (out * Tensor(np.random.default_rng(seed).standard_normal(out.shape))).sum().backward()
    return [t.grad.copy() for t in inputs]


def qkv(seed=0, B=2, n_head=2, T_q=T, T_k=T, d=4):
    return random_tensors((B, n_head, T_q, d), (B, n_head, T_k, d), (B, n_head, T_k, d), seed=seed)


# ------------------------------------------------------------------ the formula
@pytest.mark.parametrize("name", MASKS)
def test_attention_matches_the_formula_in_numpy(name):
    q, k, v = qkv(seed=1)
    out = scaled_dot_product_attention(q, k, v, MASKS[name])
    expected = numpy_attention(q.data, k.data, v.data, MASKS[name])
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", [scaled_dot_product_attention, attention_from_primitives])
def test_scores_are_scaled_by_the_key_size_when_values_are_wider_or_narrower(fn):
    for d_k, d_v in [(4, 9), (9, 1)]:  # sqrt(d_k) and sqrt(d_v) differ
        q, k, v = random_tensors((2, 3, d_k), (2, 5, d_k), (2, 5, d_v), seed=d_v)
        out = fn(q, k, v, causal_mask(3, 5))
        assert out.shape == (2, 3, d_v)
        scores = np.einsum("bqd,bkd->bqk", q.data, k.data) / math.sqrt(d_k)
        scores = np.where(causal_mask(3, 5), scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        np.testing.assert_allclose(out.data, weights @ v.data, rtol=1e-12, atol=1e-14)
        assert gradcheck(lambda q, k, v: fn(q, k, v), q, k, v)


@pytest.mark.parametrize("name", MASKS)
def test_fused_attention_equals_its_composition_in_values_and_gradients(name):
    q, k, v = qkv(seed=2)
    mask = MASKS[name]
    fused = scaled_dot_product_attention(q, k, v, mask)
    composed = attention_from_primitives(q, k, v, mask)
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12, atol=1e-14)
    g_fused = gradients(lambda *a: scaled_dot_product_attention(*a, mask), q, k, v)
    g_composed = gradients(lambda *a: attention_from_primitives(*a, mask), q, k, v)
    for a, b in zip(g_fused, g_composed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", MASKS)
def test_attention_gradcheck_with_each_mask(name):
    q, k, v = qkv(seed=3, B=2, n_head=1, d=3)
    assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, MASKS[name]), q, k, v)


def test_composed_attention_gradcheck_with_a_mask():
    q, k, v = qkv(seed=4, B=1, n_head=2, d=3)
    assert gradcheck(lambda q, k, v: attention_from_primitives(q, k, v, MASKS["strided"]), q, k, v)


def test_cross_attention_shapes_with_fewer_queries_than_keys():
    q, k, v = qkv(seed=5, T_q=2, T_k=4, d=3)
    out = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(out.data, numpy_attention(q.data, k.data, v.data), atol=1e-12)
    assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v), q, k, v)


def test_attention_dropout_backward_passes_gradcheck_with_a_fixed_draw():
    q, k, v = qkv(seed=6, B=1, d=3)

    def fn(q, k, v):  # a fresh generator with the same seed: the same dropout mask each call
        return scaled_dot_product_attention(q, k, v, dropout_p=0.4, rng=np.random.default_rng(7))

    assert not np.allclose(fn(q, k, v).data, scaled_dot_product_attention(q, k, v).data)
    assert gradcheck(fn, q, k, v)


def test_weights_are_returned_for_plotting_and_each_visible_row_sums_to_one():
    q, k, v = qkv(seed=7)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(T), return_weights=True)
    assert weights.shape == (2, 2, T, T)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(weights[..., ~causal_mask(T)] == 0)
    np.testing.assert_allclose(out.data, weights @ v.data, rtol=1e-12)


# ------------------------------------------------------------------ fully masked rows
@pytest.mark.parametrize("fn", [scaled_dot_product_attention, attention_from_primitives])
def test_a_fully_masked_row_gives_zeros_and_a_zero_gradient_never_nan(fn):
    q, k, v = qkv(seed=8)
    mask = np.ones((2, 1, T, T), dtype=bool)
    mask[0, :, 1, :] = False  # query 1 of batch 0 sees nothing
    mask[1] = False  # batch 1 sees nothing at all (e.g. a length-0 sequence)
    out = fn(q, k, v, mask)
    assert np.all(np.isfinite(out.data))
    assert np.all(out.data[0, :, 1] == 0) and np.all(out.data[1] == 0)
    grad_q, grad_k, grad_v = gradients(lambda *a: fn(*a, mask), q, k, v)
    for g in (grad_q, grad_k, grad_v):
        assert np.all(np.isfinite(g))
    assert np.all(grad_q[0, :, 1] == 0) and np.all(grad_q[1] == 0)
    assert np.all(grad_k[1] == 0) and np.all(grad_v[1] == 0)
    assert np.any(grad_q[0, :, 0] != 0)  # the visible rows still learn


def test_fully_masked_rows_pass_gradcheck():
    q, k, v = qkv(seed=9, B=2, n_head=1, d=3)
    mask = padding_mask(np.array([3, 0]), T=T)
    assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask), q, k, v)


# ------------------------------------------------------------------ bad input
def test_a_mask_of_the_wrong_shape_is_a_value_error_naming_the_shapes():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"mask of shape \(4, 4\) .* \(2, 2, 5, 5\)"):
        scaled_dot_product_attention(q, k, v, causal_mask(4))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 1, 1, 5\)"):
        attention_from_primitives(q, k, v, padding_mask(np.array([1, 2, 3]), T=5))


def test_a_non_boolean_mask_is_a_value_error():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"boolean \(True = may attend\), got dtype float64"):
        scaled_dot_product_attention(q, k, v, np.zeros((T, T)))


def test_mismatched_q_k_v_shapes_are_a_value_error():
    q, k, v = random_tensors((1, 3, 4), (1, 3, 5), (1, 3, 4))
    with pytest.raises(ValueError, match=r"got q \(1, 3, 4\), k \(1, 3, 5\), v \(1, 3, 4\)"):
        scaled_dot_product_attention(q, k, v)


# ------------------------------------------------------------------ teaching layers
def test_weight_free_dot_product_attention_is_softmax_of_x_x_transposed_times_x():
    (x,) = random_tensors((2, 4, 3), seed=10)
    expected = numpy_attention(x.data, x.data, x.data)
    np.testing.assert_allclose(dot_product_attention(x).data, expected, rtol=1e-12)
    assert gradcheck(lambda x: dot_product_attention(x, causal_mask(4)), x)


def test_single_head_self_attention_projects_then_attends_and_passes_gradcheck():
    head = SingleHeadSelfAttention(6, d_head=4, rng=0, dtype=np.float64)
    (x,) = random_tensors((2, 3, 6), seed=11)
    out = head(x, causal_mask(3))
    assert out.shape == (2, 3, 4)
    W_q, W_k, W_v = head.query.weight.data, head.key.weight.data, head.value.weight.data
    expected = numpy_attention(x.data @ W_q.T, x.data @ W_k.T, x.data @ W_v.T, causal_mask(3))
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    assert gradcheck(lambda x, *p: head(x, causal_mask(3)), x, *head.parameters())


# ------------------------------------------------------------------ multi-head attention
def numpy_multi_head(mha, x, memory=None, mask=None):
    """Reference: one head at a time, with the module's weights, in NumPy."""
    C, H, D = mha.d_model, mha.n_head, mha.d_head
    if mha.cross_attention:
        q = x @ mha.query.weight.data.T + mha.query.bias.data
        kv = memory @ mha.key_value.weight.data.T + mha.key_value.bias.data
        k, v = kv[..., :C], kv[..., C:]
    else:
        qkv_ = x @ mha.qkv.weight.data.T + mha.qkv.bias.data
        q, k, v = qkv_[..., :C], qkv_[..., C : 2 * C], qkv_[..., 2 * C :]
    if mask is not None and mask.ndim == 4:
        mask = mask[:, 0]  # (B, 1, T_q, T_k): the same for every head -> (B, T_q, T_k)
    heads = []
    for h in range(H):
        part = slice(h * D, (h + 1) * D)
        heads.append(numpy_attention(q[..., part], k[..., part], v[..., part], mask))
    y = np.concatenate(heads, axis=-1)
    return y @ mha.out.weight.data.T + mha.out.bias.data


def test_multi_head_self_attention_equals_heads_computed_one_by_one():
    mha = MultiHeadAttention(8, 2, keep_weights=True, rng=0, dtype=np.float64)
    (x,) = random_tensors((2, T, 8), seed=12)
    out = mha(x, causal=True)
    expected = numpy_multi_head(mha, x.data, mask=causal_mask(T))
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)


def test_multi_head_attention_combines_its_mask_with_the_causal_mask():
    mha = MultiHeadAttention(8, 2, keep_weights=True, rng=0, dtype=np.float64)
    (x,) = random_tensors((2, T, 8), seed=12)
    padding = padding_mask(np.array([T, 3]))
    out = mha(x, mask=padding, causal=True)
    expected = numpy_multi_head(mha, x.data, mask=padding & causal_mask(T))
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    assert np.all(mha.last_attention_weights[1, :, :, 3:] == 0)


@pytest.mark.parametrize("dropout_p", [0.0, 0.4])
def test_self_attention_from_qkv_equals_split_attend_merge_and_passes_gradcheck(dropout_p):
    (qkv,) = random_tensors((2, T, 3 * 6), seed=30)
    mask = padding_mask(np.array([T, 2])) & causal_mask(T)

    def packed(qkv):
        rng = np.random.default_rng(31)  # the same dropout draw at every call
        return self_attention(qkv, 2, mask, dropout_p=dropout_p, rng=rng)

    def split_attend_merge(qkv):
        q, k, v = (part.reshape(2, T, 2, 3).transpose(0, 2, 1, 3) for part in split(qkv, 3, -1))
        rng = np.random.default_rng(31)
        y = scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p, rng=rng)
        return y.transpose(0, 2, 1, 3).reshape(2, T, 6)

    np.testing.assert_allclose(packed(qkv).data, split_attend_merge(qkv).data, rtol=1e-12)
    (fused,), (composed,) = gradients(packed, qkv), gradients(split_attend_merge, qkv)
    np.testing.assert_allclose(fused, composed, rtol=1e-10, atol=1e-12)
    assert gradcheck(packed, qkv)


def test_causal_attention_computed_in_blocks_of_queries_passes_gradcheck(monkeypatch):
    from transformer import _fast_attention

    monkeypatch.setattr(_fast_attention, "CAUSAL_BLOCK", 2)  # T = 5: blocks of 2, 2 and 1
    (qkv_packed,) = random_tensors((2, T, 3 * 6), seed=32)
    assert gradcheck(lambda qkv: self_attention(qkv, 2, is_causal=True), qkv_packed)
    q, k, v = qkv(seed=33, T_q=4)  # queries at positions 1..4 of 5: blocks of 2 and 2
    blocked = scaled_dot_product_attention(q, k, v, is_causal=True)
    expected = numpy_attention(q.data, k.data, v.data, causal_mask(4, T))
    np.testing.assert_allclose(blocked.data, expected, rtol=1e-12)
    assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v)
    with pytest.raises(ValueError, match="T_q=5, T_k=4"):
        scaled_dot_product_attention(k, q, q, is_causal=True)


def test_multi_head_cross_attention_equals_heads_computed_one_by_one():
    mha = MultiHeadAttention(8, 4, cross_attention=True, d_memory=6, rng=1, dtype=np.float64)
    x, memory = random_tensors((2, 3, 8), (2, 4, 6), seed=13)
    out = mha(x, memory)
    assert out.shape == (2, 3, 8)
    np.testing.assert_allclose(out.data, numpy_multi_head(mha, x.data, memory.data), rtol=1e-10)


def test_multi_head_self_attention_gradcheck_with_a_padding_mask():
    mha = MultiHeadAttention(8, 2, rng=2, dtype=np.float64)
    (x,) = random_tensors((2, 4, 8), seed=14)
    mask = padding_mask(np.array([4, 2]))
    assert gradcheck(lambda x, *p: mha(x, mask=mask, causal=True), x, *mha.parameters())


def test_multi_head_cross_attention_gradcheck():
    mha = MultiHeadAttention(8, 2, cross_attention=True, rng=3, dtype=np.float64)
    x, memory = random_tensors((2, 3, 8), (2, 4, 8), seed=15)
    assert gradcheck(lambda x, m, *p: mha(x, m), x, memory, *mha.parameters())


def test_multi_head_attention_with_rotary_gradcheck():
    mha = MultiHeadAttention(8, 2, rotary=RotaryEmbedding(4), bias=False, rng=4, dtype=np.float64)
    (x,) = random_tensors((1, 4, 8), seed=16)
    assert gradcheck(lambda x, *p: mha(x, causal=True), x, *mha.parameters())


def test_attention_weights_are_kept_only_when_asked_for():
    mha = MultiHeadAttention(8, 2, rng=5)
    x = Tensor(np.random.default_rng(17).standard_normal((2, T, 8)).astype(np.float32))
    mha(x, causal=True)
    assert mha.last_attention_weights is None
    mha.keep_weights = True
    mha(x, causal=True)
    weights = mha.last_attention_weights
    assert isinstance(weights, np.ndarray) and weights.shape == (2, 2, T, T)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(weights[..., ~causal_mask(T)] == 0)


def test_float32_stays_float32_in_values_and_gradients():
    mha = MultiHeadAttention(8, 2, dropout=0.1, rotary=RotaryEmbedding(4), keep_weights=True, rng=6)
    x = Tensor(np.random.default_rng(18).standard_normal((2, T, 8)).astype(np.float32), True)
    out = mha(x, causal=True)
    assert out.dtype == np.float32 and mha.last_attention_weights.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in mha.parameters())


def test_attention_dropout_acts_in_training_only():
    mha = MultiHeadAttention(8, 2, dropout=0.5, rng=7, dtype=np.float64)
    (x,) = random_tensors((1, 4, 8), seed=19)
    mha.train()
    first, second = mha(x).data, mha(x).data
    assert not np.allclose(first, second)  # a new draw each call
    mha.eval()
    np.testing.assert_allclose(mha(x).data, numpy_multi_head(mha, x.data), rtol=1e-10)


@pytest.mark.parametrize(
    "d_model, n_head", [(8, 3), (10, 4), (8, 0)], ids=["8/3", "10/4", "no heads"]
)
def test_d_model_not_divisible_by_n_head_is_a_value_error_naming_both(d_model, n_head):
    with pytest.raises(ValueError, match=rf"d_model={d_model} .* n_head={n_head}"):
        MultiHeadAttention(d_model, n_head)


def test_multi_head_attention_rejects_wrong_inputs_clearly():
    mha = MultiHeadAttention(8, 2)
    x = Tensor(np.zeros((2, 3, 6), np.float32))
    with pytest.raises(ValueError, match=r"x of shape \(B, T, 8\), got \(2, 3, 6\)"):
        mha(x)
    x = Tensor(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ValueError, match=r"mask of shape \(2, 2\) .* \(2, 2, 3, 3\)"):
        mha(x, mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="self-attention takes no memory"):
        mha(x, memory=x)
    cross = MultiHeadAttention(8, 2, cross_attention=True)
    with pytest.raises(ValueError, match=r"memory of shape \(B, S, 8\), got None"):
        cross(x)


# ------------------------------------------------------------------ causality
@pytest.mark.parametrize("name", ["causal", "sliding_window", "strided", "fixed"])
def test_changing_a_token_changes_exactly_the_outputs_allowed_to_see_it(name):
    T_long = 9
    mask = {
        "causal": causal_mask(T_long),
        "sliding_window": sliding_window_mask(T_long, 3),
        "strided": strided_mask(T_long, 3),
        "fixed": fixed_mask(T_long, 3, 1),
    }[name]
    mha = MultiHeadAttention(8, 2, rng=8, dtype=np.float64)
    rng = np.random.default_rng(20)
    x = rng.standard_normal((2, T_long, 8))
    base = mha(Tensor(x), mask=mask).data
    for t in range(T_long):
        changed = x.copy()
        changed[:, t] = rng.standard_normal((2, 8))
        out = mha(Tensor(changed), mask=mask).data
        affected = np.any(out != base, axis=(0, 2))  # which positions' outputs moved
        np.testing.assert_array_equal(affected, mask[:, t], err_msg=f"changed position {t}")
        assert np.all(out[:, :t] == base[:, :t])  # never an earlier output


# ------------------------------------------------------------------ KV cache
def decode_in_chunks(mha, x, chunks, capacity=None, **kwargs):
    cache = KVCache(capacity)
    outputs, start = [], 0
    with no_grad():
        for size in chunks:
            outputs.append(mha(x[:, start : start + size], causal=True, cache=cache, **kwargs).data)
            start += size
    assert len(cache) == x.shape[1]
    return np.concatenate(outputs, axis=1)


@pytest.mark.parametrize("chunks", [[1] * 6, [2, 1, 3], [6]], ids=["one by one", "2+1+3", "all"])
@pytest.mark.parametrize("rotary", [False, True], ids=["plain", "rope"])
@pytest.mark.parametrize("capacity", [None, 6, 8, 3], ids=["grown", "full", "room", "outgrown"])
def test_incremental_decoding_with_the_cache_equals_the_full_causal_pass(chunks, rotary, capacity):
    rope = RotaryEmbedding(4) if rotary else None
    mha = MultiHeadAttention(8, 2, rotary=rope, rng=9, dtype=np.float64)
    (x,) = random_tensors((2, 6, 8), seed=21, requires_grad=False)
    full = mha(x, causal=True).data
    incremental = decode_in_chunks(mha, x, chunks, capacity)
    np.testing.assert_allclose(incremental, full, rtol=1e-10, atol=1e-12)


def test_a_cache_with_capacity_writes_into_its_buffers_and_keeps_earlier_views_intact():
    cache = KVCache(capacity=5)
    k1, v1 = random_tensors((1, 2, 2, 3), (1, 2, 2, 3), seed=24, requires_grad=False)
    k2, v2 = random_tensors((1, 2, 1, 3), (1, 2, 1, 3), seed=25, requires_grad=False)
    first_k, _ = cache.append(k1, v1)
    first = first_k.data.copy()
    all_k, all_v = cache.append(k2, v2)
    assert np.shares_memory(all_k.data, first_k.data)  # one buffer, no concatenation
    np.testing.assert_array_equal(first_k.data, first)  # the earlier view still reads 2 rows
    np.testing.assert_array_equal(all_k.data, np.concatenate([k1.data, k2.data], axis=-2))
    cache.select(np.array([0, 0]))  # two beams from one row
    k3, v3 = random_tensors((2, 2, 1, 3), (2, 2, 1, 3), seed=26, requires_grad=False)
    k, _ = cache.append(k3, v3)
    expected = np.concatenate([np.repeat(all_k.data, 2, axis=0), k3.data], axis=-2)
    np.testing.assert_array_equal(k.data, expected)


def test_a_cache_records_the_graph_when_gradients_flow_through_it():
    mha = MultiHeadAttention(8, 2, rng=12, dtype=np.float64)
    (x,) = random_tensors((1, 4, 8), seed=27)
    cache = KVCache(capacity=8)
    out = concatenate(
        [mha(x[:, :2], causal=True, cache=cache), mha(x[:, 2:], causal=True, cache=cache)], 1
    )
    out.sum().backward()
    grad_cached = x.grad.copy()
    x.grad = None
    mha(x, causal=True).sum().backward()
    np.testing.assert_allclose(grad_cached, x.grad, rtol=1e-10)


def test_the_cache_works_in_float32_too():
    mha = MultiHeadAttention(8, 2, rng=10)
    x = Tensor(np.random.default_rng(22).standard_normal((1, 5, 8)).astype(np.float32))
    incremental = decode_in_chunks(mha, x, [1] * 5)
    assert incremental.dtype == np.float32
    np.testing.assert_allclose(incremental, mha(x, causal=True).data, rtol=1e-5, atol=1e-6)


def test_cross_attention_cache_computes_the_memory_keys_once():
    mha = MultiHeadAttention(8, 2, cross_attention=True, rng=11, dtype=np.float64)
    x, memory = random_tensors((2, 3, 8), (2, 4, 8), seed=23, requires_grad=False)
    cache = KVCache()
    first = mha(x[:, :1], memory, cache=cache).data
    cached_k = cache.k
    later = mha(x[:, 1:], cache=cache).data  # no memory needed any more
    assert cache.k is cached_k and len(cache) == 4
    np.testing.assert_allclose(np.concatenate([first, later], axis=1), mha(x, memory).data)
    cache.reset()
    assert len(cache) == 0


def test_a_self_attention_cache_requires_causal():
    mha = MultiHeadAttention(8, 2, rng=0)
    x = Tensor(np.ones((1, 3, 8), np.float32))
    with pytest.raises(ValueError, match="causal=True"):
        mha(x, cache=KVCache())


def test_weight_free_attention_returns_its_weights_and_heads_split_and_merge():
    (x,) = random_tensors((2, 4, 6), seed=3)
    out, weights = dot_product_attention(x, return_weights=True)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0)
    np.testing.assert_allclose(out.data, weights @ x.data)
    mha = MultiHeadAttention(6, 3, rng=0)
    heads = mha.split_heads(x)
    assert heads.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(heads.data[:, 1], x.data[..., 2:4])
    np.testing.assert_array_equal(mha.merge_heads(heads).data, x.data)
