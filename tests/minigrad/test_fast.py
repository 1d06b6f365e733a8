"""Every fast form in minigrad._fast and minigrad._erf computes what its plain form beside it
computes: random float64 inputs, small arrays (NumPy's own loops) and large ones (BLAS, the
unshifted exp), and the edge cases each was written for."""

import math

import numpy as np
import pytest

from minigrad import _erf, _fast

SMALL, LARGE = (3, 5), (4, 32, 256)  # LARGE has 32768 elements, past _fast.BLAS_MIN_SIZE
SHAPES = pytest.mark.parametrize("shape", [SMALL, LARGE], ids=["small", "large"])


def random(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def read_only_broadcast(shape, seed):
    """A gradient as the backward of a sum hands it on: one row repeated, read-only."""
    return np.broadcast_to(random(shape[-1:], seed), shape)


def assert_agree(fast, plain, rtol=1e-12, atol=1e-12):
    fast, plain = np.asarray(fast), np.asarray(plain)
    assert fast.shape == plain.shape and fast.dtype == plain.dtype
    np.testing.assert_allclose(fast, plain, rtol=rtol, atol=atol)


def test_the_large_shape_takes_the_blas_path_and_the_small_one_does_not():
    assert math.prod(LARGE) >= _fast.BLAS_MIN_SIZE > math.prod(SMALL)


# --------------------------------------------------------------------- sums
@SHAPES
@pytest.mark.parametrize("make", [random, read_only_broadcast], ids=["fresh", "broadcast"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sums_agree_with_numpy(shape, make, dtype):
    a, b = make(shape, 1).astype(dtype), make(shape, 2).astype(dtype)
    column = random((*shape[:-1], 1), 3).astype(dtype)
    row = random(shape[-1:], 4).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    pairs = [
        (_fast.sum_last_axis(a), _fast.sum_last_axis_plain(a)),
        (_fast.sum_leading_axes(a), _fast.sum_leading_axes_plain(a)),
        (_fast.outer(column, row), _fast.outer_plain(column, row)),
    ]
    for axis in (-1, 0, len(shape) - 1):
        pairs.append((_fast.sum_along(a, axis), _fast.sum_along_plain(a, axis)))
        pairs.append((_fast.dot_along(a, b, axis), _fast.dot_along_plain(a, b, axis)))
    for axis in (None, -1, 0, (0, 1)):
        for keepdims in (False, True):
            pairs.append(
                (_fast.sum_over(a, axis, keepdims), _fast.sum_over_plain(a, axis, keepdims))
            )
    for fast, plain in pairs:
        assert_agree(fast, plain, rtol=tol, atol=tol * 100)  # a sum of everything: 32768 terms


@SHAPES
def test_sums_of_integers_stay_exact(shape):
    ints = np.arange(math.prod(shape)).reshape(shape)
    np.testing.assert_array_equal(_fast.sum_over(ints, -1, False), ints.sum(axis=-1))


@SHAPES
def test_the_repeated_gradient_of_a_sum_agrees_with_the_broadcast_view(shape):
    row_sums = (*shape[:-1], 1)
    for kept_shape, grad in [((1,) * len(shape), np.array(2.5)), (row_sums, random(row_sums, 6))]:
        fast = _fast.repeat_grad(grad, kept_shape, shape)
        plain = _fast.repeat_grad_plain(grad, kept_shape, shape)
        assert_agree(fast, plain, rtol=0, atol=0)


@pytest.mark.parametrize("c", [2, 3, 1, 0.5, -1, 0, 1.7, -2.5])
def test_power_agrees_with_numpy_pow(c):
    x = np.abs(random(SMALL, 7)) + 0.1
    assert_agree(_fast.power(x, c), _fast.power_plain(x, c))


# --------------------------------------------------------------------- exp for softmax
EXP_CASES = {  # (scale, shift): which branch of exp_and_sum each one takes
    "ordinary": (1.0, 0.0),  # unshifted
    "too-large-to-exp": (1e3, 0.0),  # shifted: exp would overflow
    "rows-underflow": (1.0, -1e3),  # shifted: every exp of a row is 0
    "large-but-safe": (1.0, 300.0),  # unshifted, exp up to e^305
}


@SHAPES
@pytest.mark.parametrize("case", list(EXP_CASES))
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("always_shift", [False, True])
def test_exp_and_sum_gives_the_softmax_and_logsumexp_of_the_textbook(
    shape, case, axis, always_shift
):
    scale, shift = EXP_CASES[case]
    x = random(shape, 8, scale) + shift
    e, total, c = _fast.exp_and_sum(x, axis, always_shift)
    e0, total0, c0 = _fast.exp_and_sum_plain(x, axis)
    assert_agree(e / total, e0 / total0, atol=1e-300)
    assert_agree(np.log(total) + c, np.log(total0) + c0)


def test_exp_and_sum_skips_the_shift_only_where_it_is_safe_and_not_in_the_log_domain():
    def shifted(x, always_shift=False):
        return not (np.isscalar(c := _fast.exp_and_sum(x, -1, always_shift)[2]) and c == 0)

    assert not shifted(random(LARGE, 9)) and not shifted(random(LARGE, 9) + 300)
    assert shifted(random(LARGE, 9) * 1e3) and shifted(random(LARGE, 9) - 1e3)
    assert shifted(random(LARGE, 9), always_shift=True)


@SHAPES
@pytest.mark.parametrize("always_shift", [False, True])
def test_exp_and_sum_keeps_nan_zeroes_a_fully_masked_row_and_gives_inf_its_weight(
    shape, always_shift
):
    x = random(shape, 10).reshape(-1, shape[-1])
    x[0, 1] = np.nan  # row 0: NaN throughout
    x[1] = -np.inf  # row 1: every key masked, all zero
    x[2, 3] = np.inf  # row 2: NaN at the inf, 0 elsewhere; log-sum-exp +inf
    e, total, c = _fast.exp_and_sum(x, -1, always_shift)
    e0, total0, c0 = _fast.exp_and_sum_plain(x, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p, p0 = e / np.where(total == 0, 1, total), e0 / np.where(total0 == 0, 1, total0)
        lse, lse0 = np.log(total) + c, np.log(total0) + c0
    np.testing.assert_array_equal(np.isnan(p), np.isnan(p0))
    assert np.isnan(p[0]).all() and (p[1] == 0).all() and np.isnan(p[2, 3])
    assert (np.delete(p[2], 3) == 0).all() and lse[2, 0] == np.inf and lse[1, 0] == -np.inf
    assert_agree(p[3:], p0[3:])
    np.testing.assert_allclose(lse, lse0, rtol=1e-12)


# --------------------------------------------------------------------- fused kernels
@SHAPES
@pytest.mark.parametrize("make_grad", [random, read_only_broadcast], ids=["fresh", "broadcast"])
def test_tanh_gelu_kernels_agree_with_the_formula(shape, make_grad):
    x = random(shape, 11, scale=3.0)
    x.reshape(-1)[:4] = [-30.0, 30.0, 0.0, -1e-8]  # saturated, and around zero
    assert_agree(_fast.tanh_gelu(x), _fast.tanh_gelu_plain(x))
    grad = make_grad(shape, 12)
    assert_agree(_fast.tanh_gelu_grad(grad, x), _fast.tanh_gelu_grad_plain(grad, x))
    assert _fast.tanh_gelu(np.float64(0.3)).shape == ()  # a 0-d input stays an array


def test_blockwise_covers_every_element_once_including_a_short_last_block():
    n = 2 * _fast.BLOCK_SIZE + 5
    counts = np.zeros(n)
    _fast.blockwise(lambda block: block.__iadd__(1), counts.reshape(n, 1))
    assert np.all(counts == 1)
    x, grad = random((n,), 19), random((n,), 20)
    assert_agree(_fast.tanh_gelu(x), _fast.tanh_gelu_plain(x))
    assert_agree(_fast.tanh_gelu_grad(grad, x), _fast.tanh_gelu_grad_plain(grad, x))


@SHAPES
@pytest.mark.parametrize("affine", ["none", "weight", "weight and bias"])
@pytest.mark.parametrize("make_grad", [random, read_only_broadcast], ids=["fresh", "broadcast"])
def test_layer_norm_kernels_agree_with_the_formula(shape, affine, make_grad):
    x = random(shape, 13, scale=3.0) + 1.0
    centered = x - x.mean(axis=-1, keepdims=True)
    rstd = 1 / np.sqrt((centered**2).mean(axis=-1, keepdims=True) + 1e-5)
    weight, bias = random(shape[-1:], 14) + 1, random(shape[-1:], 15)
    params = {"none": [], "weight": [weight], "weight and bias": [weight, bias]}[affine]
    assert_agree(
        _fast.scale_and_shift(centered, rstd, *params),
        _fast.scale_and_shift_plain(centered, rstd, *params),
    )
    grad = make_grad(shape, 16)
    fast = _fast.layer_norm_backward(grad, centered, rstd, *params[:1])
    plain = _fast.layer_norm_backward_plain(grad, centered, rstd, *params[:1])
    assert_agree(fast[0], plain[0], atol=1e-10)
    if params:
        assert_agree(fast[1], plain[1], atol=1e-10)
    else:
        assert fast[1] is None and plain[1] is None


@pytest.mark.parametrize("size", [7, 2 * _fast.BLOCK_SIZE + 3], ids=["small", "blocks"])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("decay", [1.0, 0.999])
def test_the_adam_step_agrees_with_the_formula_over_several_steps(size, amsgrad, decay):
    states = []
    for _ in range(2):  # data, m, v, max_v: the same start for both forms
        m = np.abs(random((size,), 21)) * 0.1
        states.append([random((size,), 20), m, m * m, m * m * 2 if amsgrad else None])
    for step in range(1, 4):
        grad = random((size,), 22 + step, scale=10.0**-step)  # shrinking: amsgrad keeps v
        for adam_step, (data, m, v, max_v) in zip((_fast.adam_step, _fast.adam_step_plain), states):
            adam_step(data, grad, m, v, max_v, 1e-2, 0.9, 0.95, 1e-8, step, decay)
    for fast, plain in zip(*states):
        if fast is not None:
            assert_agree(fast, plain, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("n", [1, 5, _fast.ONE_HOT_MAX_ROWS, _fast.ONE_HOT_MAX_ROWS + 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scatter_add_rows_sums_the_rows_of_each_id_and_leaves_unread_rows_zero(n, dtype):
    ids = np.random.default_rng(30).integers(0, n, 40)
    ids[:3] = 0  # a repeated id
    rows = random((40, 6), 31).astype(dtype)
    fast, plain = _fast.scatter_add_rows(ids, rows, n), _fast.scatter_add_rows_plain(ids, rows, n)
    assert_agree(fast, plain, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert np.all(fast[np.setdiff1d(np.arange(n), ids)] == 0)


# --------------------------------------------------------------------- erf
def test_erf_agrees_with_math_erf_on_every_interval_and_at_the_edges():
    x = np.concatenate(
        [np.linspace(-7, 7, 2001), [0.0, -0.0, 0.46875, -0.46875, 4.0, 30.0, 1e-20, 1e300]]
    )
    x = np.concatenate([x, [np.inf, -np.inf, np.nan]])
    fast, plain = _erf.erf(x), _erf.erf_plain(x)
    np.testing.assert_allclose(fast, plain, rtol=1e-15, atol=1e-300)
    assert fast[-3] == 1 and fast[-2] == -1 and np.isnan(fast[-1])


def test_erf_keeps_float32_and_reads_integers_as_float64():
    x32 = np.linspace(-5, 5, 101, dtype=np.float32)
    assert _erf.erf(x32).dtype == _erf.erf_plain(x32).dtype == np.float32
    np.testing.assert_allclose(_erf.erf(x32), _erf.erf_plain(x32), rtol=1e-6, atol=1e-7)
    assert_agree(_erf.erf(np.arange(-3, 4)), _erf.erf_plain(np.arange(-3, 4)), rtol=1e-15)


def test_the_helpers_stay_importable_from_where_they_were_before_the_split():
    from minigrad import functional, ops

    assert functional.erf is _erf.erf and functional.exp_and_sum is _fast.exp_and_sum
    for name in ("sum_last_axis", "sum_leading_axes", "sum_along", "outer"):
        assert getattr(ops, name) is getattr(_fast, name)
    a, b = random(SMALL, 17), random(SMALL, 18)
    assert_agree(ops.dot_last_axis(a, b), (a * b).sum(axis=-1, keepdims=True))
