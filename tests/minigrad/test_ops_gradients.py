"""Every primitive op's backward against central finite differences, in float64."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import broadcastable_shapes

import minigrad as mg
from minigrad import Tensor, gradcheck, random_tensors


def positive(shape, seed=0):
    rng = np.random.default_rng(seed)
    return Tensor(rng.uniform(0.5, 2.0, shape), requires_grad=True)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 1)), ((), (2, 3))],
)
def test_binary_op_gradient_with_broadcasting(name, shape_a, shape_b):
    a, b = random_tensors(shape_a, shape_b, seed=1)
    assert gradcheck(BINARY[name], a, b)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(BINARY)),
    shape=broadcastable_shapes(shape=(2, 3, 2), min_dims=0, max_dims=4, max_side=3),
)
def test_binary_op_gradient_on_any_broadcastable_shape(name, shape):
    a, b = random_tensors((2, 3, 2), shape, seed=2)
    assert gradcheck(BINARY[name], a, b)
    assert gradcheck(BINARY[name], b, a)


@settings(max_examples=20, deadline=None)
@given(
    batch=broadcastable_shapes(shape=(2, 3), min_dims=0, max_dims=3, max_side=2),
    n=st.integers(1, 3),
    k=st.integers(1, 3),
    m=st.integers(1, 3),
)
def test_matmul_gradient_with_any_broadcast_batch(batch, n, k, m):
    a, b = random_tensors((2, 3, n, k), (*batch, k, m), seed=3)
    assert gradcheck(lambda a, b: a @ b, a, b)


@pytest.mark.parametrize(
    "fn",
    [lambda x: x + 2.0, lambda x: 2.0 + x, lambda x: x - 3, lambda x: 3 - x, lambda x: x * 0.5,
     lambda x: 0.5 * x, lambda x: x / 4, lambda x: 1 / (x * x + 1), lambda x: -x],
    ids=["add", "radd", "sub", "rsub", "mul", "rmul", "div", "rdiv", "neg"],
)  # fmt: skip
def test_python_scalars_on_either_side(fn):
    (x,) = random_tensors((3, 2), seed=3)
    assert gradcheck(fn, x)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, 1.7, -2.5])
def test_pow_with_constant_exponent(exponent):
    x = positive((3, 4))
    assert gradcheck(lambda x: x**exponent, x)


def test_pow_with_tensor_exponent_and_base():
    base, exponent = positive((3, 1), seed=4), random_tensors((1, 4), seed=5)[0]
    assert gradcheck(lambda b, e: b**e, base, exponent)
    assert gradcheck(lambda e: 2.0**e, exponent)


def test_pow_exponent_gradient_at_a_zero_base():
    """d(0**y)/dy = 0**y log 0: 0 for y >= 0 (a constant 0 or 1), -inf for y < 0 (PyTorch's)."""
    y = Tensor(np.array([2.0, 0.5, 0.0, -1.0]), requires_grad=True)
    with np.errstate(divide="ignore"):  # 0**-1 = inf
        (0.0**y).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, 0.0, -np.inf])


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((2, 4), (4, 3)), ((2, 3, 4), (4, 5)),
     ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))],
)  # fmt: skip
def test_matmul_gradient_1d_2d_batched_and_broadcast(shape_a, shape_b):
    a, b = random_tensors(shape_a, shape_b, seed=6)
    out = a @ b
    assert out.shape == np.matmul(a.data, b.data).shape
    assert gradcheck(lambda a, b: a @ b, a, b)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "max", "min"])
def test_reduction_gradient(reduction, axis, keepdims):
    (x,) = random_tensors((3, 4, 2), seed=7)  # continuous values: no ties for max and min
    fn = lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims)  # noqa: E731
    assert fn(x).shape == getattr(np, reduction)(x.data, axis=axis, keepdims=keepdims).shape
    assert gradcheck(fn, x)


def test_reductions_take_numpy_integer_and_list_axes():
    (x,) = random_tensors((3, 4, 2), seed=7)
    for reduction in ("sum", "mean", "var", "max", "min"):
        expected = getattr(np, reduction)(x.data, axis=(0, 2))
        np.testing.assert_allclose(getattr(x, reduction)(axis=[0, 2]).data, expected)
        assert getattr(x, reduction)(axis=np.int64(1)).shape == (3, 2)


def test_reductions_over_an_axis_beside_an_empty_one():
    x = Tensor(np.zeros((2, 0, 3)), requires_grad=True)
    assert x.var(axis=-1).shape == x.mean(axis=-1).shape == (2, 0)
    x.var(axis=-1).sum().backward()
    assert x.grad.shape == (2, 0, 3)


def test_var_with_ddof_matches_numpy():
    (x,) = random_tensors((5, 3), seed=8)
    np.testing.assert_allclose(x.var(axis=0, ddof=1).data, np.var(x.data, axis=0, ddof=1))
    assert gradcheck(lambda x: x.var(axis=0, ddof=1), x)


def test_max_shares_the_gradient_among_ties():
    x = Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])


@pytest.mark.parametrize(
    "fn, make_input",
    [(lambda x: x.exp(), random_tensors), (lambda x: x.log(), positive),
     (lambda x: x.sqrt(), positive), (lambda x: x.tanh(), random_tensors),
     (lambda x: x.sigmoid(), random_tensors), (lambda x: x.abs(), random_tensors),
     (lambda x: x.relu(), random_tensors)],
    ids=["exp", "log", "sqrt", "tanh", "sigmoid", "abs", "relu"],
)  # fmt: skip
def test_elementwise_gradient(fn, make_input):
    x = make_input((3, 4), seed=9)
    x = x[0] if isinstance(x, list) else x
    x.data[np.abs(x.data) < 1e-3] = 0.1  # away from the kinks of abs and relu
    assert gradcheck(fn, x)


def test_sigmoid_is_exact_at_large_magnitudes():
    x = Tensor(np.array([-800.0, -40.0, 0.0, 40.0, 800.0]))
    expected = [0.0, np.exp(-40.0) / (1 + np.exp(-40.0)), 0.5, 1 / (1 + np.exp(-40.0)), 1.0]
    np.testing.assert_allclose(x.sigmoid().data, expected, rtol=1e-15)


def test_shape_ops_gradient():
    (x,) = random_tensors((2, 3, 4), seed=10)
    assert gradcheck(lambda x: x.reshape(4, 6) * Tensor(np.arange(24.0).reshape(4, 6)), x)
    assert gradcheck(lambda x: x.reshape(-1), x)
    assert gradcheck(lambda x: x.transpose(2, 0, 1), x)
    assert gradcheck(lambda x: x.transpose(-1, 0, 1), x)  # negative axes, inverted as well
    assert gradcheck(lambda x: x.transpose(0, -1, -2), x)
    assert gradcheck(lambda x: x.transpose(), x)
    assert gradcheck(lambda x: x.swapaxes(0, 2), x)
    assert gradcheck(lambda x: x.T, x)
    assert x.transpose(2, 0, 1).shape == (4, 2, 3)


@pytest.mark.parametrize(
    "index",
    [1, (slice(None), 1), (Ellipsis, slice(1, 3)), (slice(None, None, -1),),
     np.array([0, 1, 1, 0]), (slice(None), np.array([2, 0, 2])), np.array([True, False])],
    ids=["int", "column", "ellipsis", "reversed", "repeated-rows", "repeated-cols", "bool"],
)  # fmt: skip
def test_getitem_gradient(index):
    (x,) = random_tensors((2, 3, 4), seed=11)
    np.testing.assert_array_equal(x[index].data, x.data[index])
    assert gradcheck(lambda x: x[index], x)


def test_an_index_list_may_hold_tensors():
    (x,) = random_tensors((3, 2), seed=11)
    np.testing.assert_array_equal(x[[Tensor(2), Tensor(0)]].data, x.data[[2, 0]])


@pytest.mark.parametrize("rows", [np.array([0, 2, 0, 0]), [0, 2, 0, 0], (0, 2, 0, 0)], ids=str)
def test_getitem_sums_the_gradient_of_repeated_rows(rows):
    table = Tensor(np.zeros((3, 2)), requires_grad=True)
    table[rows, :].sum().backward()
    counts = np.bincount(np.asarray(rows), minlength=3)
    np.testing.assert_array_equal(table.grad, np.repeat(counts[:, None], 2, axis=1))


def test_concatenate_stack_split_gradient():
    a, b, c = random_tensors((2, 3), (2, 1), (2, 2), seed=12)
    assert gradcheck(lambda a, b, c: mg.concatenate([a, b, c], axis=1), a, b, c)
    d, e = random_tensors((2, 3), (2, 3), seed=13)
    assert gradcheck(lambda d, e: mg.stack([d, e], axis=1), d, e)
    assert gradcheck(lambda d, e: mg.stack([d, e], axis=-1), d, e)
    (x,) = random_tensors((6, 2), seed=14)
    pieces = mg.split(x, 3)
    assert [p.shape for p in pieces] == [(2, 2)] * 3
    assert gradcheck(lambda x: mg.split(x, 3)[0] * mg.split(x, 3)[2], x)
    assert gradcheck(lambda x: mg.split(x, [1, 4], axis=0)[1], x)
    assert [p.shape for p in mg.split(x, [1], axis=1)] == [(6, 1), (6, 1)]
    assert [p.shape for p in mg.split(x, np.int64(2))] == [(3, 2)] * 2


def test_masked_fill_and_where_gradient():
    x, y = random_tensors((3, 4), (1, 4), seed=15)
    mask = np.array([[True, False, False, True]])
    assert gradcheck(lambda x: x.masked_fill(mask, 0.0), x)
    filled = x.masked_fill(mask, -np.inf)
    assert np.all(np.isneginf(filled.data[:, [0, 3]]))
    condition = np.random.default_rng(0).random((3, 4)) > 0.5
    assert gradcheck(lambda x, y: mg.where(condition, x, y), x, y)
    assert gradcheck(lambda x: mg.where(condition, x, 0.0), x)


def test_a_value_used_twice_gets_both_gradients():
    (x,) = random_tensors((3,), seed=16)
    assert gradcheck(lambda x: x * x + x.exp() * x, x)
