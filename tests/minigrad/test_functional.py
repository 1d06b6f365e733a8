"""Fused functions: gradient checks, and equality with their composition from primitives."""

import math

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, random_tensors
from minigrad import functional as F

# ------------------------------------------------------------ the same formulas from primitives


def composed_softmax(x, axis=-1):
    e = (x - Tensor(x.data.max(axis=axis, keepdims=True))).exp()
    return e / e.sum(axis=axis, keepdims=True)


def composed_log_softmax(x, axis=-1):
    shifted = x - Tensor(x.data.max(axis=axis, keepdims=True))
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def composed_cross_entropy(logits, targets, ignore_index=None):
    logp = composed_log_softmax(logits.reshape(-1, logits.shape[-1]))
    targets = targets.reshape(-1)
    keep = np.ones(len(targets), bool) if ignore_index is None else targets != ignore_index
    picked = logp[np.arange(len(targets))[keep], targets[keep]]
    return -picked.sum() / max(keep.sum(), 1)


def composed_gelu_tanh(x):
    inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
    return x * 0.5 * (inner.tanh() + 1)


def composed_layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / (var + eps).sqrt() * w + b


def assert_same_values_and_gradients(fused, composed, *inputs):
    out_fused = fused(*inputs)
    out_composed = composed(*inputs)
    np.testing.assert_allclose(out_fused.data, out_composed.data, rtol=1e-10, atol=1e-12)
    weights = Tensor(np.random.default_rng(99).standard_normal(out_fused.shape))
    grads = []
    for fn in (fused, composed):
        for t in inputs:
            t.grad = None
        (fn(*inputs) * weights).sum().backward()
        grads.append([None if t.grad is None else t.grad.copy() for t in inputs])
    for g_fused, g_composed in zip(*grads):
        np.testing.assert_allclose(g_fused, g_composed, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_equals_composition_and_passes_gradcheck(axis):
    (x,) = random_tensors((3, 4, 5), seed=0)
    assert_same_values_and_gradients(
        lambda x: F.softmax(x, axis), lambda x: composed_softmax(x, axis), x
    )
    assert gradcheck(lambda x: F.softmax(x, axis), x)


@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_equals_composition_and_passes_gradcheck(axis):
    (x,) = random_tensors((3, 5), seed=1)
    assert_same_values_and_gradients(
        lambda x: F.log_softmax(x, axis), lambda x: composed_log_softmax(x, axis), x
    )
    assert gradcheck(lambda x: F.log_softmax(x, axis), x)


def test_softmax_of_huge_logits_does_not_overflow():
    x = Tensor(np.array([[1000.0, 1000.0], [-1000.0, 0.0]]))
    np.testing.assert_allclose(F.softmax(x).data, [[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(F.log_softmax(x).data[0], [-math.log(2)] * 2)


def test_softmax_of_a_fully_masked_row_is_zero_with_zero_gradient():
    x = Tensor(np.array([[0.5, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]]), requires_grad=True)
    y = F.softmax(x)
    assert np.all(np.isfinite(y.data)) and np.all(y.data[1] == 0)
    (y * Tensor(np.arange(6.0).reshape(2, 3))).sum().backward()
    assert np.all(np.isfinite(x.grad)) and np.all(x.grad[1] == 0) and x.grad[0, 1] == 0


@pytest.mark.parametrize("ignore_index", [None, 2])
def test_cross_entropy_equals_composition_and_passes_gradcheck(ignore_index):
    (logits,) = random_tensors((2, 3, 4), seed=2)
    targets = np.array([[0, 2, 3], [1, 2, 0]])
    fused = lambda x: F.cross_entropy(x, targets, ignore_index)  # noqa: E731
    composed = lambda x: composed_cross_entropy(x, targets, ignore_index)  # noqa: E731
    assert_same_values_and_gradients(fused, composed, logits)
    assert gradcheck(fused, logits)


def test_cross_entropy_value_by_hand_and_with_everything_ignored():
    logits = Tensor(np.log(np.array([[0.25, 0.75], [0.5, 0.5]])), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 0]))
    assert loss.item() == pytest.approx(-(math.log(0.75) + math.log(0.5)) / 2)
    none_kept = F.cross_entropy(logits, np.array([-1, -1]), ignore_index=-1)
    none_kept.backward()
    assert none_kept.item() == 0 and np.all(logits.grad == 0)


def test_log_domain_results_keep_their_precision_when_small():
    """-log p of a confident guess is tiny next to the log-sum-exp; without the max shift it
    would come out of a difference of two numbers near 20 (relative error 3e-7 here)."""
    exact = math.log1p(2 * math.exp(-20.0))  # logits [20, 0, 0], target 0
    loss = F.cross_entropy(Tensor(np.array([[20.0, 0.0, 0.0]])), np.array([0])).item()
    assert loss == pytest.approx(exact, rel=1e-7)
    log_p = F.log_softmax(Tensor(np.array([[20.0, 0.0, 0.0]]))).data[0, 0]
    assert -log_p == pytest.approx(exact, rel=1e-7)
    one_class = Tensor(np.array([[0.3], [-1.7], [2.2]]), requires_grad=True)
    assert np.all(F.log_softmax(one_class).data == 0)  # log 1, exactly
    loss = F.cross_entropy(one_class, np.zeros(3, int))
    loss.backward()
    assert loss.item() == 0 and np.all(one_class.grad == 0)


def test_rows_holding_inf_or_nan():
    """NaN spreads over its row; +inf has a log-sum-exp of +inf (as in PyTorch) and takes
    all of the softmax, undefined as inf / inf (PyTorch makes the whole row NaN)."""
    x = Tensor(np.array([[0.5, np.inf, 1.0], [0.5, np.nan, 1.0], [0.5, 0.0, 1.0]]))
    with np.errstate(invalid="ignore"):  # inf / inf, as the input asks for
        p, log_p, lse = F.softmax(x).data, F.log_softmax(x).data, F.logsumexp(x).data
    np.testing.assert_array_equal(p[0], [0, np.nan, 0])
    np.testing.assert_array_equal(log_p[0], [-np.inf, np.nan, -np.inf])
    assert lse[0] == np.inf
    assert np.all(np.isnan(p[1])) and np.all(np.isnan(log_p[1])) and np.isnan(lse[1])
    assert np.all(np.isfinite(p[2])) and np.all(np.isfinite(log_p[2]))


def test_softmax_and_gelu_of_a_0d_tensor():
    x = Tensor(np.array(0.3), requires_grad=True)
    for fn, value in ((F.softmax, 1.0), (F.log_softmax, 0.0)):
        y = fn(x, axis=-1)
        y.backward()
        assert y.item() == value and x.grad == 0
        x.grad = None
    x = Tensor(np.array(0.7), requires_grad=True)
    F.gelu(x, approximate="tanh").backward()
    assert F.gelu(x, approximate="tanh").item() == pytest.approx(0.5305701347, rel=1e-9)


def test_cross_entropy_rejects_bad_targets():
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"target 3 outside the classes \[0, 3\)"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))


def test_erf_matches_the_standard_library_to_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 4001), [0.0, 0.46875, 4.0, 30.0, -30.0, 1e-20]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(F.erf(x), expected, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_values_and_gradcheck(approximate):
    (x,) = random_tensors((3, 4), seed=3)
    x.data *= 2
    if approximate == "none":
        expected = x.data * 0.5 * (1 + np.vectorize(math.erf)(x.data / math.sqrt(2)))
    else:
        u = math.sqrt(2 / math.pi) * (x.data + 0.044715 * x.data**3)
        expected = 0.5 * x.data * (1 + np.tanh(u))
    np.testing.assert_allclose(F.gelu(x, approximate).data, expected, rtol=1e-14)
    assert gradcheck(lambda x: F.gelu(x, approximate), x)


def test_gelu_tanh_equals_its_composition():
    (x,) = random_tensors((4, 5), seed=4)
    assert_same_values_and_gradients(lambda x: F.gelu(x, "tanh"), composed_gelu_tanh, x)


def test_gelu_exact_gradient_is_cdf_plus_x_pdf():
    (x,) = random_tensors((6,), seed=5)
    F.gelu(x).sum().backward()
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x.data / math.sqrt(2)))
    pdf = np.exp(-0.5 * x.data**2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(x.grad, cdf + x.data * pdf, rtol=1e-13)


def test_layer_norm_equals_composition_and_passes_gradcheck():
    x, w, b = random_tensors((2, 3, 8), (8,), (8,), seed=6)
    assert_same_values_and_gradients(F.layer_norm, composed_layer_norm, x, w, b)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, w, b), x, w, b)
    assert gradcheck(lambda x: F.layer_norm(x), x)


def test_layer_norm_of_float32_with_a_numpy_float64_eps_stays_float32():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    assert F.layer_norm(x, eps=np.float64(1e-5)).dtype == np.float32


def test_layer_norm_rejects_a_weight_of_the_wrong_size():
    x, w = random_tensors((2, 8), (4,))
    with pytest.raises(ValueError, match=r"weight of shape \(4,\) != \(8,\)"):
        F.layer_norm(x, w)


def test_linear_equals_composition_and_passes_gradcheck():
    x, w, b = random_tensors((2, 3, 4), (5, 4), (5,), seed=7)
    assert_same_values_and_gradients(F.linear, lambda x, w, b: x @ w.T + b, x, w, b)
    assert gradcheck(F.linear, x, w, b)
    assert gradcheck(lambda x, w: F.linear(x, w), x, w)


def test_a_0d_input_is_a_named_error_for_layers_over_the_last_axis():
    with pytest.raises(ValueError, match=r"\(\)"):
        F.linear(Tensor(1.0), Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="0-d"):
        F.layer_norm(Tensor(1.0))


def test_linear_takes_a_bias_that_broadcasts_and_names_one_that_does_not():
    x, w, b = random_tensors((2, 3), (4, 3), (1, 4), seed=5)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), x, w, b)
    with pytest.raises(ValueError, match=r"bias of shape \(5,\)"):
        F.linear(x, w, Tensor(np.ones(5)))
    with pytest.raises(ValueError, match=r"weight must be \(out, in\), got shape \(3,\)"):
        F.linear(x, Tensor(np.ones(3)))


def test_linear_shape_mismatch_names_the_shapes():
    x, w = random_tensors((2, 3), (5, 4))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(5, 4\)"):
        F.linear(x, w)


def test_embedding_equals_indexing_and_passes_gradcheck():
    (table,) = random_tensors((5, 3), seed=8)
    ids = np.array([[0, 4, 4], [2, 0, 1]])
    assert_same_values_and_gradients(lambda t: F.embedding(ids, t), lambda t: t[ids], table)
    assert gradcheck(lambda t: F.embedding(ids, t), table)


def test_embedding_gradient_sums_the_rows_that_read_each_id_and_leaves_the_rest_zero():
    table = Tensor(np.zeros((6, 2)), requires_grad=True)
    ids = np.array([[3, 1, 3], [3, 0, 1]])
    upstream = np.arange(12.0).reshape(2, 3, 2)  # a different gradient at every position
    F.embedding(ids, table).backward(upstream)
    expected = np.zeros((6, 2))
    for position, row in np.ndenumerate(ids):
        expected[row] += upstream[position]
    np.testing.assert_array_equal(table.grad, expected)
    np.testing.assert_array_equal(table.grad[3], upstream[0, 0] + upstream[0, 2] + upstream[1, 0])
    assert not table.grad[[2, 4, 5]].any()
    table.grad = None
    F.embedding(ids, table).sum().backward()  # with all-ones upstream: how often each id is read
    np.testing.assert_array_equal(table.grad[:, 0], [1, 2, 0, 3, 0, 0])


def test_embedding_out_of_range_names_the_range():
    (table,) = random_tensors((5, 3))
    with pytest.raises(IndexError, match=r"id 7 outside the table's range \[0, 5\)"):
        F.embedding(np.array([1, 7]), table)
    with pytest.raises(IndexError, match=r"id -1"):
        F.embedding(np.array([-1]), table)


def test_relu_equals_the_method_and_passes_gradcheck():
    (x,) = random_tensors((4, 3), seed=9)
    assert_same_values_and_gradients(F.relu, lambda x: x * Tensor(x.data > 0), x)
    assert gradcheck(F.relu, x)


def test_dropout_keeps_the_expected_value_and_masks_its_gradient():
    x = Tensor(np.ones((200, 200)), requires_grad=True)
    y = F.dropout(x, 0.25, training=True, rng=np.random.default_rng(0))
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)
    assert F.dropout(x, 0.25, training=False) is x
    (small,) = random_tensors((3, 4), seed=10)
    assert gradcheck(lambda t: F.dropout(t, 0.5, True, np.random.default_rng(1)), small)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_scales_the_kept_values_by_one_over_keep_probability_so_the_mean_survives(p):
    x = Tensor(np.random.default_rng(11).uniform(1, 2, 100_000).astype(np.float32), True)
    y = F.dropout(x, p, training=True, rng=np.random.default_rng(12))
    kept = y.data != 0
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data[kept] / x.data[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 0.01
    assert abs(y.data.mean() / x.data.mean() - 1) < 0.02  # E[y] = x: the point of the scale
    y.backward(np.ones(x.shape, np.float32))
    np.testing.assert_allclose(x.grad, kept / (1 - p), rtol=1e-6)


def test_dropout_needs_a_generator_and_a_valid_probability():
    x = Tensor(np.ones(3))
    with pytest.raises(ValueError, match="rng"):
        F.dropout(x, 0.1, training=True)
    with pytest.raises(ValueError, match="1.5"):
        F.dropout(x, 1.5, training=True, rng=np.random.default_rng(0))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_logsumexp_equals_composition_and_passes_gradcheck(axis, keepdims):
    (x,) = random_tensors((3, 4), seed=11)

    def composed(x):
        shift = Tensor(x.data.max(axis=axis, keepdims=True))
        out = (x - shift).exp().sum(axis=axis, keepdims=True).log() + shift
        return out if keepdims else out.reshape(np.squeeze(out.data, axis=axis).shape)

    fused = lambda x: F.logsumexp(x, axis, keepdims)  # noqa: E731
    assert_same_values_and_gradients(fused, composed, x)
    assert gradcheck(fused, x)
    big = Tensor(np.array([[1000.0, 1000.0], [-np.inf, 0.0]]))
    np.testing.assert_allclose(F.logsumexp(big).data, [1000 + math.log(2), 0.0])


@pytest.mark.parametrize("axis", [None, (0, 2)])
def test_logsumexp_over_several_axes_passes_gradcheck(axis):
    (x,) = random_tensors((2, 3, 4), seed=12)
    expected = np.log(np.exp(x.data).sum(axis=axis))
    np.testing.assert_allclose(F.logsumexp(x, axis).data, expected, rtol=1e-12)
    assert gradcheck(lambda x: F.logsumexp(x, axis), x)


# ------------------------------------------------------------ large arrays: the fast paths
# Past a size threshold, sums go to BLAS, outer products to a matrix product, and exp skips
# the max shift when it can (minigrad/_fast.py, each against its plain form in test_fast.py);
# the gradient checks above use small shapes, so these tests hold the fused functions on the
# fast paths to the same formulas.
LARGE = (4, 32, 256)  # 32768 elements


def test_softmax_array_propagates_nan_and_zeroes_a_fully_masked_row():
    x = np.random.default_rng(22).standard_normal(LARGE)
    x[0, 0, 3] = np.nan
    x[1, 2] = -np.inf
    y = F.softmax_array(x)
    assert np.all(np.isnan(y[0, 0])) and np.all(y[1, 2] == 0)
    assert np.all(np.isfinite(np.delete(y.reshape(-1, LARGE[-1]), [0, 32 + 2], axis=0)))


LARGE_CASES = {
    "softmax": (F.softmax, composed_softmax),
    "softmax axis=1": (lambda x: F.softmax(x, axis=1), lambda x: composed_softmax(x, axis=1)),
    "log_softmax": (F.log_softmax, composed_log_softmax),
    "logsumexp": (
        F.logsumexp,
        lambda x: (x[..., :1] - composed_log_softmax(x)[..., :1]).reshape(
            LARGE[:-1]
        ),  # x0 - log p0
    ),
    "cross_entropy": (
        lambda x: F.cross_entropy(x, LARGE_TARGETS, ignore_index=-1),
        lambda x: composed_cross_entropy(x, LARGE_TARGETS, ignore_index=-1),
    ),
    "gelu tanh": (lambda x: F.gelu(x, "tanh"), composed_gelu_tanh),
    "layer_norm": (
        lambda x: F.layer_norm(x * 3 + 1, LARGE_W.astype(x.dtype), LARGE_B.astype(x.dtype)),
        lambda x: composed_layer_norm(x * 3 + 1, LARGE_W, LARGE_B),
    ),
    "layer_norm no affine": (
        lambda x: F.layer_norm(x * 3 + 1),
        lambda x: composed_layer_norm(x * 3 + 1, 1.0, 0.0),
    ),
}
LARGE_TARGETS = np.random.default_rng(23).integers(-1, LARGE[-1], LARGE[:-1])
LARGE_W, LARGE_B = random_tensors((LARGE[-1],), (LARGE[-1],), seed=24)


@pytest.mark.parametrize("name", list(LARGE_CASES))
def test_fused_functions_on_large_arrays_equal_their_composition(name):
    fused, composed = LARGE_CASES[name]
    (x,) = random_tensors(LARGE, seed=25)
    assert_same_values_and_gradients(fused, composed, x)


@pytest.mark.parametrize("name", list(LARGE_CASES))
def test_fused_functions_on_large_float32_arrays_stay_float32_and_accurate(name):
    fused, _ = LARGE_CASES[name]
    (x64,) = random_tensors(LARGE, seed=26)
    x32 = Tensor(x64.data.astype(np.float32), requires_grad=True)
    weights = np.random.default_rng(27).standard_normal(fused(x64).shape)
    outputs = []
    for x in (x64, x32):
        out = fused(x)
        (out * Tensor(weights.astype(x.dtype))).sum().backward()
        outputs.append((out.data, x.grad))
    (y64, g64), (y32, g32) = outputs
    assert y32.dtype == g32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=2e-5, atol=2e-5 * np.abs(y64).max())
    np.testing.assert_allclose(g32, g64, rtol=2e-4, atol=2e-5 * np.abs(g64).max())


def test_the_gradient_of_a_large_sum_is_a_private_writable_array_that_accumulates():
    (x,) = random_tensors(LARGE, seed=28)
    x.sum().backward()  # Sum's backward is a read-only broadcast view at this size
    assert x.grad.flags.writeable and np.all(x.grad == 1)
    (x * 2).sum().backward()
    assert np.all(x.grad == 3)


def test_large_sums_of_booleans_and_integers_count_as_numpy_does():
    mask = np.random.default_rng(29).random(LARGE) < 0.3
    for array in (mask, mask.astype(np.int64)):
        total, per_row = Tensor(array).sum(), Tensor(array).sum(axis=-1)
        assert total.item() == array.sum() and total.dtype == array.sum().dtype
        np.testing.assert_array_equal(per_row.data, array.sum(axis=-1))


@pytest.mark.parametrize("name", list(LARGE_CASES))
def test_a_plain_sum_of_a_large_fused_output_backpropagates_like_the_composition(name):
    """fn(x).sum() hands each backward a read-only broadcast view as its gradient."""
    fused, composed = LARGE_CASES[name]
    (x,) = random_tensors(LARGE, seed=30)
    grads = []
    for fn in (fused, composed):
        x.grad = None
        fn(x).sum().backward()
        grads.append(x.grad)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)
