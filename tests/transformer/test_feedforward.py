"""Feed-forward network and mixture of experts: formulas, routing, capacity, losses, gradients."""

import math

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, random_tensors
from minigrad import functional as F
from minigrad.functional import erf
from transformer.feedforward import FeedForward, MoE


def relu(h):
    return np.maximum(h, 0)


def gelu(h):
    return 0.5 * h * (1 + erf(h / math.sqrt(2)))


# ------------------------------------------------------------------ feed-forward
@pytest.mark.parametrize("activation, act", [("relu", relu), ("gelu", gelu)])
def test_feed_forward_is_linear_activation_linear(activation, act):
    ffn = FeedForward(4, activation=activation, rng=0, dtype=np.float64)
    assert ffn.hidden == 16 and ffn.up.weight.shape == (16, 4)
    (x,) = random_tensors((2, 3, 4), seed=50)
    h = act(x.data @ ffn.up.weight.data.T + ffn.up.bias.data)
    expected = h @ ffn.down.weight.data.T + ffn.down.bias.data
    np.testing.assert_allclose(ffn(x).data, expected, rtol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
def test_feed_forward_gradcheck(activation):
    ffn = FeedForward(4, hidden=6, activation=activation, rng=1, dtype=np.float64)
    (x,) = random_tensors((2, 3, 4), seed=51)
    assert gradcheck(lambda x, *p: ffn(x), x, *ffn.parameters())


def test_feed_forward_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match=r"activation must be one of .*got 'swish'"):
        FeedForward(4, activation="swish")


# ------------------------------------------------------------------ mixture of experts
def loop_reference(moe, x):
    """The MoE written with Python loops over tokens and choices, in token order."""
    tokens = x.reshape(-1, moe.d_model)
    N, E, k = len(tokens), moe.n_experts, moe.top_k
    logits = tokens @ moe.router.weight.data.T
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    capacity = N if moe.capacity_factor is None else math.ceil(moe.capacity_factor * N * k / E)
    load = np.zeros(E, int)
    out = np.zeros_like(tokens)
    for n in range(N):
        chosen = np.argsort(-p[n])[:k]
        gates = p[n, chosen] / (p[n, chosen].sum() if k > 1 else 1)
        for e, g in zip(chosen, gates):
            load[e] += 1
            if load[e] > capacity:
                continue  # dropped: this expert contributes nothing
            h = relu(moe.w_up.data[e] @ tokens[n] + moe.b_up.data[e])
            out[n] += g * (moe.w_down.data[e] @ h + moe.b_down.data[e])
    return out.reshape(x.shape), load, p


def routing_margin(moe, x):
    """Gap between the k-th and (k+1)-th router probability: far from 0 means no tie."""
    _, _, p = loop_reference(moe, x.data)
    ranked = -np.sort(-p, axis=-1)
    k = moe.top_k
    return np.inf if k == moe.n_experts else (ranked[:, k - 1] - ranked[:, k]).min()


@pytest.mark.parametrize(
    "top_k, capacity_factor", [(1, None), (2, None), (1, 0.5), (2, 0.75), (4, None)]
)
def test_moe_equals_a_loop_over_tokens_and_reports_its_routing(top_k, capacity_factor):
    moe = MoE(8, 4, top_k, hidden=6, capacity_factor=capacity_factor, rng=2, dtype=np.float64)
    (x,) = random_tensors((2, 5, 8), seed=52)
    expected, load, _ = loop_reference(moe, x.data)
    np.testing.assert_allclose(moe(x).data, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(moe.tokens_per_expert, load)
    assert moe.tokens_per_expert.sum() == 10 * top_k
    capacity = 10 if capacity_factor is None else math.ceil(capacity_factor * 10 * top_k / 4)
    assert moe.dropped_tokens == np.maximum(load - capacity, 0).sum()


def test_tokens_over_capacity_get_zero_from_the_moe_and_pass_through_the_residual():
    moe = MoE(4, 2, top_k=1, hidden=3, capacity_factor=0.5, rng=3, dtype=np.float64)
    (x,) = random_tensors((1, 8, 4), seed=53)
    y = moe(x)
    assert moe.capacity == 2  # ceil(0.5 * 8 tokens * 1 / 2 experts)
    assert moe.dropped_tokens == 8 - 4
    dropped = np.all(y.data == 0, axis=-1)[0]
    assert dropped.sum() == 4
    assert moe.dropped_mask.shape == (1, 8, 1)
    np.testing.assert_array_equal(moe.dropped_mask[0, :, 0], dropped)
    # the first two tokens of each expert (in token order) are the ones kept
    _, _, p = loop_reference(moe, x.data)
    choice = p.argmax(-1)
    for e in range(2):
        mine = np.flatnonzero(choice == e)
        assert not dropped[mine[:2]].any() and dropped[mine[2:]].all()


@pytest.mark.parametrize("capacity_factor, capacity", [(0.5, 2), (0.7, 3), (1.0, 3), (2.0, 6)])
def test_capacity_caps_each_expert_and_leaves_the_kept_tokens_as_without_it(
    capacity_factor, capacity
):
    # 6 tokens, 2 choices each, 4 experts: capacity = ceil(capacity_factor * 6 * 2 / 4)
    (x,) = random_tensors((1, 6, 8), seed=58)
    capped = MoE(8, 4, top_k=2, hidden=5, capacity_factor=capacity_factor, rng=8, dtype=np.float64)
    free = MoE(8, 4, top_k=2, hidden=5, rng=8, dtype=np.float64)  # the same weights, no cap
    y, y_free = capped(x).data[0], free(x).data[0]
    assert capped.capacity == capacity and free.dropped_tokens == 0
    choices = np.argsort(-F.softmax(capped.router(x)).data[0], axis=-1, kind="stable")[:, :2]
    dropped = capped.dropped_mask[0]  # (6, 2)
    kept_per_expert = np.bincount(choices[~dropped], minlength=4)
    np.testing.assert_array_equal(kept_per_expert, np.minimum(free.tokens_per_expert, capacity))
    untouched, emptied = ~dropped.any(-1), dropped.all(-1)
    np.testing.assert_allclose(y[untouched], y_free[untouched], rtol=1e-13)
    assert not y[emptied].any()
    assert (
        capped.dropped_tokens == dropped.sum() == (free.tokens_per_expert - kept_per_expert).sum()
    )


@pytest.mark.parametrize("top_k", [1, 2], ids=["top-1", "top-2"])
def test_moe_gradcheck_away_from_routing_ties(top_k):
    moe = MoE(8, 4, top_k, hidden=4, capacity_factor=1.0, rng=4, dtype=np.float64)
    (x,) = random_tensors((2, 3, 8), seed=54)
    assert routing_margin(moe, x) > 1e-3  # a 1e-6 perturbation cannot change the routing
    assert gradcheck(lambda x, *p: moe(x), x, *moe.parameters())
    assert moe.dropped_tokens > 0  # the check covered dropped slots too


def test_load_balancing_and_z_loss_follow_their_formulas_and_pass_gradcheck():
    moe = MoE(4, 3, top_k=2, hidden=3, rng=5, dtype=np.float64)
    (x,) = random_tensors((2, 4, 4), seed=55)
    moe(x)
    logits = x.data.reshape(-1, 4) @ moe.router.weight.data.T
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    f = np.bincount(p.argmax(-1), minlength=3) / 8
    assert moe.aux_loss.item() == pytest.approx(3 * np.sum(f * p.mean(0)), rel=1e-12)
    log_z = np.log(np.exp(logits).sum(-1))
    assert moe.z_loss.item() == pytest.approx(np.mean(log_z**2), rel=1e-12)
    assert routing_margin(moe, x) > 1e-3

    def router_loss(name):
        def loss(x, router_weight):
            moe(x)
            return getattr(moe, name)

        return loss

    assert gradcheck(router_loss("aux_loss"), x, moe.router.weight)
    assert gradcheck(router_loss("z_loss"), x, moe.router.weight)


def test_load_balancing_loss_is_one_when_uniform_and_n_experts_when_collapsed():
    moe = MoE(4, 4, rng=6, dtype=np.float64)
    (x,) = random_tensors((2, 3, 4), seed=56)
    moe.router.weight.data[...] = 0  # uniform probabilities
    moe(x)
    assert moe.aux_loss.item() == pytest.approx(1.0)
    assert moe.z_loss.item() == pytest.approx(math.log(4) ** 2)
    moe.router.weight.data[...] = 0
    moe.router.weight.data[2] = 100 * np.sign(x.data.reshape(-1, 4).sum(0))  # all to expert 2
    x.data[...] = np.abs(x.data) * np.sign(x.data.reshape(-1, 4).sum(0))
    moe(x)
    np.testing.assert_array_equal(moe.tokens_per_expert, [0, 0, 6, 0])
    assert moe.aux_loss.item() == pytest.approx(4.0, rel=1e-6)


def test_router_losses_by_hand_on_tokens_that_read_one_column_of_the_router_each():
    moe = MoE(3, 2, rng=9, dtype=np.float64)
    moe.router.weight.data[...] = [[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]]  # (n_experts, d_model)
    moe(Tensor(np.eye(3)[None]))  # token n has logits router.weight[:, n]
    logits = [(2.0, 0.0), (0.0, 1.0), (-1.0, 3.0)]
    lse = [math.log(math.exp(a) + math.exp(b)) for a, b in logits]
    assert moe.z_loss.item() == pytest.approx(sum(v * v for v in lse) / 3, rel=1e-14)
    p0 = [math.exp(a - v) for (a, _), v in zip(logits, lse)]  # P(expert 0) per token
    f = [1 / 3, 2 / 3]  # top-1: token 0 to expert 0, tokens 1 and 2 to expert 1
    P = [sum(p0) / 3, 1 - sum(p0) / 3]
    assert moe.aux_loss.item() == pytest.approx(2 * (f[0] * P[0] + f[1] * P[1]), rel=1e-14)


def test_moe_keeps_float32():
    moe = MoE(4, 3, top_k=2, capacity_factor=1.0, rng=7)
    x = Tensor(np.random.default_rng(57).standard_normal((2, 3, 4)).astype(np.float32), True)
    y = moe(x)
    assert y.dtype == moe.aux_loss.dtype == moe.z_loss.dtype == np.float32
    (y.sum() + moe.aux_loss + moe.z_loss).backward()
    assert x.grad.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in moe.parameters())


@pytest.mark.parametrize("top_k", [5, 0])
def test_top_k_outside_one_to_n_experts_is_a_value_error_naming_both(top_k):
    with pytest.raises(ValueError, match=rf"top_k={top_k} must be between 1 and n_experts=4"):
        MoE(8, 4, top_k=top_k)


def test_moe_rejects_a_bad_capacity_factor_and_a_wrong_width():
    with pytest.raises(ValueError, match="capacity_factor must be positive, got 0"):
        MoE(8, 4, capacity_factor=0)
    with pytest.raises(ValueError, match=r"MoE\(d_model=8\) got input of shape \(1, 2, 6\)"):
        MoE(8, 4)(Tensor(np.zeros((1, 2, 6), np.float32)))
