"""Optimizers against their update formulas worked out by hand, and the schedule."""

import math

import numpy as np
import pytest

from minigrad import Tensor, nn, optim


def quadratic_steps(opt_factory, steps=3, start=(1.0, -2.0)):
    """Minimize f(p) = sum(a * p^2), gradient 2 a p; returns the parameter after each step."""
    p = nn.Parameter(np.array(start))
    a = np.array([1.0, 3.0])
    opt = opt_factory([p])
    history = []
    for _ in range(steps):
        opt.zero_grad()
        (Tensor(a) * p * p).sum().backward()
        opt.step()
        history.append(p.data.copy())
    return history


def test_sgd_plain_and_with_momentum_by_hand():
    (p1,) = quadratic_steps(lambda ps: optim.SGD(ps, lr=0.1), steps=1)
    np.testing.assert_allclose(p1, [1 - 0.1 * 2, -2 + 0.1 * 12])
    history = quadratic_steps(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), steps=2)
    p, a, lr, mu = np.array([1.0, -2.0]), np.array([1.0, 3.0]), 0.1, 0.9
    g = 2 * a * p
    v = g
    p = p - lr * v
    np.testing.assert_allclose(history[0], p)
    g = 2 * a * p
    v = mu * v + g
    p = p - lr * v
    np.testing.assert_allclose(history[1], p)


def test_sgd_nesterov_and_weight_decay_by_hand():
    (p1, p2) = quadratic_steps(
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.1), steps=2
    )
    p, a = np.array([1.0, -2.0]), np.array([1.0, 3.0])
    g = 2 * a * p + 0.1 * p
    v = g
    p = p - 0.1 * (g + 0.5 * v)
    np.testing.assert_allclose(p1, p)
    g = 2 * a * p + 0.1 * p
    v = 0.5 * v + g
    p = p - 0.1 * (g + 0.5 * v)
    np.testing.assert_allclose(p2, p)


def adam_by_hand(steps, lr, betas, eps, weight_decay, decoupled):
    p, a = np.array([1.0, -2.0]), np.array([1.0, 3.0])
    m, v, out = np.zeros(2), np.zeros(2), []
    for t in range(1, steps + 1):
        g = 2 * a * p
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_by_hand(weight_decay):
    got = quadratic_steps(lambda ps: optim.Adam(ps, lr=0.1, weight_decay=weight_decay), steps=4)
    expected = adam_by_hand(4, 0.1, (0.9, 0.999), 1e-8, weight_decay, decoupled=False)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_adamw_decays_weights_outside_the_adaptive_step():
    factory = lambda ps: optim.AdamW(ps, lr=0.05, betas=(0.8, 0.99), weight_decay=0.5)  # noqa: E731
    got = quadratic_steps(factory, steps=4)
    expected = adam_by_hand(4, 0.05, (0.8, 0.99), 1e-8, 0.5, decoupled=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    coupled = adam_by_hand(4, 0.05, (0.8, 0.99), 1e-8, 0.5, decoupled=False)
    assert not np.allclose(got, coupled)


def test_parameter_groups_have_their_own_hyperparameters():
    decayed, plain = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.AdamW([{"params": [decayed]}, {"params": [plain], "weight_decay": 0.0}], lr=0.1,
                      weight_decay=0.5)  # fmt: skip
    decayed.grad, plain.grad = np.zeros(2), np.zeros(2)
    opt.step()
    np.testing.assert_allclose(decayed.data, 1 - 0.1 * 0.5)
    np.testing.assert_allclose(plain.data, 1.0)


def test_optimizer_state_dict_resumes_exactly():
    def run(steps, restore_after=None):
        p = nn.Parameter(np.array([1.0, -2.0]))
        opt = optim.Adam([p], lr=0.1)
        for i in range(steps):
            if i == restore_after:
                state = opt.state_dict()
                p_saved = p.data.copy()
                p = nn.Parameter(p_saved)
                opt = optim.Adam([p], lr=0.1)
                opt.load_state_dict(state)
            p.grad = 2 * p.data
            opt.step()
        return p.data

    np.testing.assert_array_equal(run(5), run(5, restore_after=3))


def test_optimizers_keep_float32():
    p = nn.Parameter(np.ones(3, np.float32))
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p]), optim.AdamW([p])):
        p.grad = np.ones(3, np.float32)
        opt.step()
        assert p.data.dtype == np.float32


def test_warmup_then_cosine_schedule():
    lr = lambda s: optim.warmup_cosine_lr(s, 1.0, warmup_steps=4, total_steps=14, min_lr=0.1)  # noqa: E731
    assert [lr(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr(9) == pytest.approx(0.1 + 0.5 * (1 + math.cos(math.pi * 0.5)) * 0.9)
    assert lr(14) == lr(100) == 0.1
    p = nn.Parameter(np.zeros(1))
    opt = optim.SGD([p], lr=2.0)
    schedule = optim.WarmupCosine(opt, warmup_steps=4, total_steps=14, min_lr=0.1)
    seen = []
    for _ in range(14):
        seen.append(schedule.get_lr()[0])
        schedule.step()
    np.testing.assert_allclose(
        seen, [optim.warmup_cosine_lr(s, 2.0, 4, 14, 0.1) for s in range(14)]
    )


def test_clip_grad_norm_scales_all_gradients_together():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    norm = optim.clip_grad_norm([a, b], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(
        np.concatenate([a.grad, b.grad]), np.array([3.0, 0.0, 4.0]) / 5, rtol=1e-6
    )
    assert optim.clip_grad_norm([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr=-1"):
        optim.SGD([nn.Parameter(np.ones(1))], lr=-1)
