"""gradcheck itself: it passes correct gradients and catches a planted wrong one."""

import numpy as np
import pytest

from minigrad import Function, GradcheckError, Tensor, gradcheck, nn, random_tensors
from minigrad import functional as F


class SquareWithWrongBackward(Function):
    """y = x**2, but the backward forgets the factor 2 (the planted bug)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * x


def test_gradcheck_catches_a_wrong_backward_and_names_input_index_and_values():
    (x,) = random_tensors((2, 3), seed=0)
    with pytest.raises(GradcheckError) as error:
        gradcheck(lambda x: SquareWithWrongBackward.apply(x).sum(), x)
    message = str(error.value)
    assert "input 0" in message and "(2, 3)" in message
    worst = np.unravel_index(np.argmax(np.abs(x.data)), x.shape)
    assert f"index {tuple(map(int, worst))}" in message
    assert "analytic" in message and "finite difference" in message


def test_gradcheck_names_the_second_input_when_only_it_is_wrong():
    a, b = random_tensors((3,), (3,), seed=1)
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(lambda a, b: a * 2 + SquareWithWrongBackward.apply(b), a, b)


def test_gradcheck_passes_a_correct_gradient_and_restores_the_inputs():
    (x,) = random_tensors((4,), seed=2)
    before = x.data.copy()
    assert gradcheck(lambda x: (x * x).sum(), x)
    np.testing.assert_array_equal(x.data, before)


def test_gradcheck_needs_float64_inputs_that_require_grad():
    with pytest.raises(TypeError, match="float32"):
        gradcheck(lambda x: x * 2, Tensor(np.ones(2, np.float32), requires_grad=True))
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda x: x * 2, Tensor(np.ones(2)))


class LogWithWrongBackward(Function):
    """y = log(x), with a backward that is wrong everywhere."""

    @staticmethod
    def forward(ctx, x):
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 123.0


def test_a_nan_finite_difference_is_a_mismatch_not_a_pass():
    x = Tensor(np.array([-1.0, -2.0]), requires_grad=True)  # log of a negative number: NaN
    with np.errstate(invalid="ignore"), pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda x: LogWithWrongBackward.apply(x).sum(), x)


def test_gradcheck_leaves_the_callers_tensors_as_they_were():
    base = np.random.default_rng(3).standard_normal((3, 2))
    x = Tensor(base.T, requires_grad=True)  # a non-contiguous view of base
    x.grad = np.full((2, 3), 7.0)
    scalar = Tensor(np.array(2.0), requires_grad=True)
    assert gradcheck(lambda x, s: (x * x * s).sum(), x, scalar)
    assert np.shares_memory(x.data, base) and scalar.shape == ()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 7.0))
    assert scalar.grad is None


def test_gradcheck_of_a_non_leaf_input_and_of_several_outputs():
    h = random_tensors((3,), seed=4)[0] * 2  # an intermediate of another graph
    assert gradcheck(lambda t: (t * t, t.exp(), 2.0), h)
    assert gradcheck(lambda t: t * 3.0, Tensor(np.array(1.5), requires_grad=True))


def test_an_output_cut_off_from_the_graph_is_a_mismatch():
    (x,) = random_tensors((3,), seed=5)
    with pytest.raises(GradcheckError, match="analytic 0.0"):
        gradcheck(lambda t: Tensor(t.data * t.data).sum(), x)


def test_an_error_inside_fn_leaves_the_input_unperturbed():
    (x,) = random_tensors((3,), seed=6)
    before, calls = x.data.copy(), []

    def fails_on_the_fourth_call(t):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return (t * t).sum()

    with pytest.raises(RuntimeError, match="boom"):
        gradcheck(fails_on_the_fourth_call, x)
    np.testing.assert_array_equal(x.data, before)


class IdentityWithSevenfoldBackward(Function):
    """y = x, but the backward multiplies the gradient by 7 (a planted bug)."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return 7 * grad


class LinearWithWrongWeightGradient(nn.Linear):
    def forward(self, x):
        return F.linear(x, IdentityWithSevenfoldBackward.apply(self.weight), self.bias)


def test_gradcheck_reaches_the_parameters_a_module_uses():
    (x,) = random_tensors((4, 3), seed=5)
    good = nn.Linear(3, 2, rng=0, dtype=np.float64)
    assert gradcheck(lambda x, *params: good(x), x, *good.parameters())
    bad = LinearWithWrongWeightGradient(3, 2, rng=0, dtype=np.float64)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 3\)\)"):
        gradcheck(lambda x, *params: bad(x), x, *bad.parameters())


def test_gradcheck_restores_data_and_grad_of_parameters_when_fn_raises():
    layer = nn.Linear(3, 2, rng=0, dtype=np.float64)
    layer.weight.grad = np.full((2, 3), 5.0)
    before = layer.weight.data.copy()
    calls = []

    def fn(w):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("stop")
        return layer(Tensor(np.ones((1, 3))))

    with pytest.raises(RuntimeError, match="stop"):
        gradcheck(fn, layer.weight)
    np.testing.assert_array_equal(layer.weight.data, before)
    np.testing.assert_array_equal(layer.weight.grad, np.full((2, 3), 5.0))
