"""The engine's contracts: graph walking, accumulation, freeing, no_grad and dtypes."""

import gc
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor
from minigrad import functional as F


def test_backward_of_a_small_expression_by_hand():
    a = Tensor(2.0, requires_grad=True)
    b = Tensor(-3.0, requires_grad=True)
    loss = a * b + b**2  # d/da = b = -3,  d/db = a + 2b = -4
    loss.backward()
    assert a.grad == -3.0 and b.grad == -4.0


def test_a_chain_of_ten_thousand_ops_needs_no_recursion():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 1.0001**10_000)


def test_gradients_accumulate_across_backward_calls():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3 + 2, 3 + 4])


def test_leaf_gradients_do_not_share_memory():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_second_backward_through_a_freed_graph_is_an_error():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).exp().sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)


def test_backward_frees_the_saved_activations():
    x = Tensor(np.ones(1000), requires_grad=True)
    hidden = x.exp()
    watcher = weakref.ref(hidden.data)
    loss = (hidden * 2).sum()
    del hidden
    gc.collect()
    assert watcher() is not None  # the graph keeps it until backward
    loss.backward()
    gc.collect()
    assert watcher() is None


def test_no_grad_builds_no_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    assert mg.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).detach() * x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_retain_grad_keeps_an_intermediate_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data)


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        y.backward()
    y.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_backward_on_a_constant_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(1.0).backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(ValueError, match="int64"):
        Tensor(np.arange(3), requires_grad=True)


def test_matmul_shape_mismatch_names_both_shapes():
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(2, 2, 3\).*\(3, 3, 4\)"):
        Tensor(np.ones((2, 2, 3))) @ Tensor(np.ones((3, 3, 4)))


def test_reshape_and_masked_fill_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 4\)"):
        Tensor(np.ones((2, 3))).reshape(4, 4)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 4\)"):
        Tensor(np.ones((2, 4))).masked_fill(np.ones(3, bool), 0.0)


def test_comparisons_give_constant_masks():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    np.testing.assert_array_equal((x > 1.5).data, [False, True, True])
    assert not (x > 1.5).requires_grad
    np.testing.assert_array_equal((x == 2.0).data, [False, True, False])


def test_item_and_numpy():
    assert Tensor(np.array([[4.0]])).item() == 4.0
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Tensor(np.ones(2)).item()
    assert isinstance(Tensor([1.0]).numpy(), np.ndarray)


FLOAT32_CASES = {
    "scalar arithmetic": lambda x, w: (x * 2.5 + 1 - x / 3.0) ** 2,
    # NumPy's own scalars and 0-d values would widen a float32 array to float64; here they
    # adapt to the tensor as Python numbers do (and as in PyTorch)
    "integer operands": lambda x, w: x * np.arange(4) + Tensor(np.arange(4)) * w - Tensor(2) * x,
    "numpy scalars": lambda x, w: x / np.sqrt(8.0) - np.int64(3) * x + np.float64(0.5) ** x,
    "0-d operands": lambda x, w: (
        (x * np.array(2.0) + Tensor(0.5, requires_grad=True) * w).abs() ** np.float64(2.5)
    ),
    "pow": lambda x, w: x**3 + (x * x + 1) ** 0.5 + 2.0**x,
    "matmul": lambda x, w: x @ w,
    "reductions": lambda x, w: x.sum(axis=0) + x.mean(axis=0) + x.max(axis=0) + x.var(axis=0),
    "elementwise": lambda x, w: x.exp() + x.tanh() + x.sigmoid() + x.relu() + x.abs().sqrt(),
    "shape": lambda x, w: mg.concatenate([x.T, w], axis=1)[:, ::2].reshape(-1),
    "select": lambda x, w: mg.where(x.data > 0, x, 0.5).masked_fill(x.data < -1, -1.0),
    "softmax": lambda x, w: F.softmax(x) + F.log_softmax(x, axis=0),
    "gelu": lambda x, w: F.gelu(x) + F.gelu(x, approximate="tanh"),
    "layer_norm": lambda x, w: F.layer_norm(x, w[:, 0] + 1, w[:, 1]),
    "linear": lambda x, w: F.linear(x, w.T, w[0]),
    "cross_entropy": lambda x, w: F.cross_entropy(x, np.array([0, 1, 3, 2]), ignore_index=3),
    "embedding": lambda x, w: F.embedding(np.array([[0, 3], [3, 1]]), x),
    "dropout": lambda x, w: F.dropout(x, 0.5, True, np.random.default_rng(0)),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_CASES))
def test_float32_stays_float32_in_values_and_gradients(name):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
    out = FLOAT32_CASES[name](x, w)
    nodes = mg.tensor._topological_order(out)  # every intermediate, to see its gradient too
    for node in nodes:
        node.retain_grad()
    out.sum().backward()
    for t in (x, w, *nodes):  # a leaf's gradient is cast to its dtype, an intermediate's not
        assert t.dtype == np.float32
        assert t.grad is None or t.grad.dtype == np.float32


def test_truth_value_only_for_one_element():
    assert Tensor(np.array([2.0])) and not Tensor(0.0)
    with pytest.raises(ValueError, match=r"\(2,\) is ambiguous"):
        bool(Tensor(np.zeros(2)))
    np.testing.assert_array_equal((~(Tensor(np.arange(3)) > 0)).data, [True, False, False])
    with pytest.raises(TypeError, match="boolean"):
        ~Tensor(np.ones(2))


def test_a_0d_float64_tensor_meets_float32_as_float32_and_gets_its_own_gradient():
    x = Tensor(np.array([1.0, 2.0, 4.0], np.float32), requires_grad=True)
    scale = Tensor(3.0, requires_grad=True)  # float64, as NumPy makes it from a Python float
    y = x * scale
    assert y.dtype == np.float32
    y.sum().backward()
    assert scale.grad.dtype == np.float64 and scale.grad == 7.0
    np.testing.assert_array_equal(x.grad, np.full(3, 3.0, np.float32))


def test_a_0d_leaf_gradient_is_an_array_of_its_dtype_across_backward_calls():
    a = Tensor(np.array(1.5, np.float32), requires_grad=True)
    b = Tensor(np.array(2.0), requires_grad=True)
    (a * b).backward()
    (a * b).backward()
    assert isinstance(a.grad, np.ndarray) and a.grad.dtype == np.float32 and a.grad == 4.0
    assert isinstance(b.grad, np.ndarray) and b.grad == 3.0


class TransposedGradient(mg.Function):
    """A buggy op: its backward returns the gradient transposed."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad.T


class TooFewGradients(mg.Function):
    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


def test_a_backward_with_the_wrong_shape_or_count_of_gradients_is_named():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"TransposedGradient.*\(4, 3\).*\(3, 4\)"):
        TransposedGradient.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match="TooFewGradients.*1 gradients for 2 inputs"):
        TooFewGradients.apply(x, x).sum().backward()


def test_retained_gradients_are_private_arrays():
    x = Tensor(np.ones(3), requires_grad=True)
    a, b = x * 2, x * 3
    a.retain_grad()
    b.retain_grad()
    (a + b).sum().backward()
    a.grad += 1
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_a_failed_second_backward_changes_no_gradient():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * x).sum()
    y.retain_grad()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    assert y.grad == 1.0


def test_a_cast_to_integers_is_a_constant():
    x = Tensor(np.array([1.7, -2.2]), requires_grad=True)
    assert not x.astype(np.int64).requires_grad
    assert x.astype(np.float32).requires_grad


def test_tensors_convert_as_numpy_and_python_expect():
    assert Tensor([Tensor(1.0), Tensor(2.5)]).dtype == np.float64
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    assert np.asarray(x) is x.data and float(Tensor(2.5)) == 2.5 and int(Tensor(3)) == 3
    rows = list(x)
    assert len(rows) == 2 and rows[1].requires_grad
    with pytest.raises(TypeError, match="0-d"):
        list(Tensor(1.0))
    assert isinstance(np.ones(2) * x, Tensor)  # NumPy still defers to the Tensor
