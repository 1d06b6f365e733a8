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


def adam_by_hand(steps, lr, betas, eps, weight_decay, decoupled, amsgrad=False):
    p, a = np.array([1.0, -2.0]), np.array([1.0, 3.0])
    m, v, v_max, out = np.zeros(2), np.zeros(2), np.zeros(2), []
    for t in range(1, steps + 1):
        g = 2 * a * p
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        v_max = np.maximum(v_max, v)
        m_hat, v_hat = m / (1 - betas[0] ** t), (v_max if amsgrad else v) / (1 - betas[1] ** t)
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


def test_warmup_rises_in_equal_steps_to_the_peak_then_falls_to_the_floor():
    # checked by properties, not by the formula: equal rises to the peak at the last warmup
    # step, then a fall through the midpoint between peak and floor, to the floor
    schedule = dict(max_lr=3.0, warmup_steps=6, total_steps=26, min_lr=1.0)
    lrs = [optim.warmup_cosine_lr(step, **schedule) for step in range(30)]
    np.testing.assert_allclose(np.diff(lrs[:6]), 0.5)
    assert lrs[5] == max(lrs) == 3.0 and lrs[0] == 0.5
    assert lrs[16] == pytest.approx(2.0)  # (step 16 - 6) / (26 - 6) = halfway down
    assert lrs[6] == 3.0 and all(a > b for a, b in zip(lrs[6:26], lrs[7:27]))  # cos(0) = 1
    assert lrs[26:] == [1.0] * 4
    falls = -np.diff(lrs[6:27])  # a half cosine: symmetric, steepest in the middle
    np.testing.assert_allclose(falls, falls[::-1], rtol=1e-12)
    assert falls[0] < falls[4] < falls[9] and falls[9] == pytest.approx(falls.max())
    assert optim.warmup_cosine_lr(0, 3.0, warmup_steps=0, total_steps=10) == 3.0


def test_bad_schedule_and_clipping_arguments_are_named():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="warmup_steps <= total_steps, got 5 and 3"):
        optim.WarmupCosine(opt, warmup_steps=5, total_steps=3)
    with pytest.raises(ValueError, match="got -1 and 3"):
        optim.WarmupCosine(opt, warmup_steps=-1, total_steps=3)
    with pytest.raises(ValueError, match="norm_type=0.5 is not a norm"):
        optim.clip_grad_norm(opt.param_groups[0]["params"], 1.0, norm_type=0.5)


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


@pytest.mark.parametrize("adam", [optim.Adam, optim.AdamW])
def test_amsgrad_divides_by_the_largest_second_moment_so_far(adam):
    factory = lambda ps: adam(ps, lr=0.1, betas=(0.9, 0.5), weight_decay=0.1, amsgrad=True)  # noqa: E731
    got = quadratic_steps(factory, steps=6)
    decoupled = adam is optim.AdamW
    expected = adam_by_hand(6, 0.1, (0.9, 0.5), 1e-8, 0.1, decoupled, amsgrad=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert not np.allclose(got, adam_by_hand(6, 0.1, (0.9, 0.5), 1e-8, 0.1, decoupled))


def test_a_single_tensor_is_not_a_parameter_list():
    p = nn.Parameter(np.ones((2, 3)))
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got Parameter"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="one of the params is int"):
        optim.Adam([p, 3])


@pytest.mark.parametrize("groups", ["same list", "two groups"])
def test_a_parameter_listed_twice_is_refused(groups):
    p = nn.Parameter(np.ones(2))
    params = [p, p] if groups == "same list" else [{"params": [p]}, {"params": [p]}]
    with pytest.raises(ValueError, match="appear more than once"):
        optim.SGD(params, lr=0.1)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov.*momentum=0.0"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
         "Nesterov.*dampening=0.1"),
        (lambda ps: optim.SGD(ps, lr=float("nan")), "lr=nan"),
        (lambda ps: optim.SGD(ps, lr=0.1, dampening=-0.5), "dampening=-0.5"),
        (lambda ps: optim.SGD([{"params": ps, "lr": -2.0}], lr=0.1), "lr=-2.0"),
        (lambda ps: optim.Adam(ps, lr=float("nan")), "lr=nan"),
        (lambda ps: optim.Adam(ps, weight_decay=-0.1), "weight_decay=-0.1"),
        (lambda ps: optim.AdamW(ps, betas=(1.0, 0.9)), r"betas\[0\]=1.0"),
        (lambda ps: optim.AdamW(ps, betas=(0.9, -0.1)), r"betas\[1\]=-0.1"),
    ],
)  # fmt: skip
def test_hyperparameters_out_of_range_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(np.ones(2))])


def test_frozen_parameters_are_accepted_and_left_alone():
    p, frozen = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2), requires_grad=False)
    opt = optim.AdamW([p, frozen], lr=0.1)
    (p * frozen).sum().backward()
    opt.step()
    assert frozen.grad is None
    np.testing.assert_array_equal(frozen.data, [1.0, 1.0])
    assert np.all(p.data < 1.0)


def test_a_grad_of_another_shape_is_not_broadcast_into_the_parameter():
    p = nn.Parameter(np.ones((2, 3)))
    p.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) but its grad has shape \(3,\)"):
        optim.SGD([p], lr=0.1).step()
    np.testing.assert_array_equal(p.data, np.ones((2, 3)))


def test_load_state_dict_refuses_a_group_of_another_size():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    saved = optim.Adam([a], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="group 0 has 1 parameters saved, 2 here"):
        optim.Adam([a, b], lr=0.1).load_state_dict(saved)


def adam_state_after_one_step(*shapes):
    params = [nn.Parameter(np.ones(shape)) for shape in shapes]
    opt = optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = np.ones(p.shape)
    opt.step()
    return opt.state_dict()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda s: s["param_groups"].append(dict(s["param_groups"][0])),
         "state has 2 parameter groups, this optimizer 1"),
        (lambda s: s["param_groups"][0].update(params=[0, 0]), "parameter id 0 twice"),
        (lambda s: s["state"].update({7: s["state"][0]}), "parameter 7, which is in none"),
        (lambda s: s["state"][1].update(exp_avg=np.ones(4)),
         r"'exp_avg' of parameter 1 has shape \(4,\), the parameter \(3,\)"),
        (lambda s: s["param_groups"][0].update(lr=-1.0), "lr=-1.0"),
    ],
)  # fmt: skip
def test_load_state_dict_refuses_a_state_that_does_not_fit_and_changes_nothing(corrupt, message):
    saved = adam_state_after_one_step(2, 3)
    corrupt(saved)
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.Adam([a, b], lr=0.5)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(saved)
    assert opt.state == {} and opt.param_groups[0]["lr"] == 0.5


def test_load_state_dict_keeps_the_parameters_of_a_torch_layout_group():
    p = nn.Parameter(np.ones(2))
    opt = optim.SGD([p], lr=0.5)
    group = {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "dampening": 0.0,
             "nesterov": False, "params": [0]}  # fmt: skip
    opt.load_state_dict({"param_groups": [group], "state": {}})
    assert opt.param_groups[0]["params"][0] is p and opt.param_groups[0]["lr"] == 0.1
    p.grad = np.ones(2)
    opt.step()
    np.testing.assert_allclose(p.data, 0.9)


def test_load_state_dict_casts_buffers_to_the_parameter_dtype():
    p64 = nn.Parameter(np.ones(2))
    opt64 = optim.Adam([p64], amsgrad=True)
    p64.grad = np.ones(2)
    opt64.step()
    p32 = nn.Parameter(np.ones(2, np.float32))
    opt32 = optim.Adam([p32], amsgrad=True)
    opt32.load_state_dict(opt64.state_dict())
    for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert opt32.state[0][name].dtype == np.float32
    p32.grad = np.ones(2, np.float32)
    opt32.step()
    assert p32.data.dtype == np.float32 and opt32.state[0]["step"] == 2


def test_clip_grad_norm_takes_a_single_tensor():
    q = nn.Parameter(np.zeros(2))
    q.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm(q, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(q.grad, [0.6, 0.8], rtol=1e-5)


@pytest.mark.parametrize(
    "norm_type, norm, clipped",
    [(float("inf"), 4.0, [0.75, -1.0]), (1.0, 7.0, [3 / 7, -4 / 7]), (3.0, 91 ** (1 / 3), None)],
)
def test_clip_grad_norm_of_other_orders(norm_type, norm, clipped):
    q = nn.Parameter(np.zeros(2))
    q.grad = np.array([3.0, -4.0])
    assert optim.clip_grad_norm([q], 1.0, norm_type=norm_type) == pytest.approx(norm)
    expected = clipped if clipped is not None else np.array([3.0, -4.0]) / norm
    np.testing.assert_allclose(q.grad, expected, rtol=1e-5)


def test_clip_grad_norm_of_a_nonfinite_norm_scales_as_torch_or_raises():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    a.grad, b.grad = np.array([3.0, np.nan]), np.array([4.0])
    assert math.isnan(optim.clip_grad_norm([a, b], 1.0))
    assert np.all(np.isnan(a.grad)) and np.all(np.isnan(b.grad))
    a.grad, b.grad = np.array([3.0, np.inf]), np.array([4.0])
    with np.errstate(invalid="ignore"):
        assert optim.clip_grad_norm([a, b], 1.0) == math.inf
    np.testing.assert_array_equal(a.grad, [0.0, np.nan])
    np.testing.assert_array_equal(b.grad, [0.0])
    a.grad = np.array([3.0, np.inf])
    with pytest.raises(RuntimeError, match="norm of order 2.0 of the gradients is inf"):
        optim.clip_grad_norm([a, b], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(a.grad, [3.0, np.inf])
