"""gradcheck itself: it passes correct gradients and catches a planted wrong one."""

import numpy as np
import pytest

from minigrad import Function, GradcheckError, Tensor, gradcheck, random_tensors


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
