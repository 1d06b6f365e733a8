"""Conv1d and its two primitives (pad, sliding windows): gradient checks, a loop-by-loop
reference, PyTorch's parameter layout, and clear errors for bad input."""

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, nn, random_tensors
from minigrad.convolution import conv1d
from minigrad.ops import pad, sliding_windows


def test_pad_adds_zeros_and_passes_gradcheck():
    (x,) = random_tensors((2, 3), seed=0)
    y = pad(x, ((1, 0), (2, 1)))
    assert y.shape == (3, 6)
    np.testing.assert_array_equal(y.data[1:, 2:5], x.data)
    assert y.data.sum() == pytest.approx(x.data.sum())
    assert gradcheck(lambda x: pad(x, ((1, 0), (2, 1))), x)


@pytest.mark.parametrize("size, step, dilation", [(3, 1, 1), (2, 2, 1), (2, 1, 3), (3, 3, 2)])
def test_sliding_windows_read_the_taps_and_pass_gradcheck(size, step, dilation):
    (x,) = random_tensors((2, 9), seed=1)
    windows = sliding_windows(x, size, step, dilation)
    n = (9 - dilation * (size - 1) - 1) // step + 1
    expected = [[x.data[:, j * step + k * dilation] for k in range(size)] for j in range(n)]
    np.testing.assert_array_equal(windows.data, np.array(expected).transpose(2, 0, 1))
    assert gradcheck(lambda x: sliding_windows(x, size, step, dilation), x)


def test_pad_and_sliding_windows_reject_bad_arguments():
    x = Tensor(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"2 pairs \(before, after\).*\(2, 5\)"):
        pad(x, ((1, 1),))
    with pytest.raises(ValueError, match="non-negative"):
        pad(x, ((0, 0), (-1, 0)))
    with pytest.raises(ValueError, match="spans 7 positions"):
        sliding_windows(x, 4, dilation=2)
    with pytest.raises(ValueError, match="step must be a positive integer, got 0"):
        sliding_windows(x, 2, step=0)


# ---------------------------------------------------------------- Conv1d
def conv1d_reference(x, w, b, stride=1, padding=0, dilation=1, groups=1, causal=False):
    """The convolution's sum written out, one output element at a time."""
    size = w.shape[2]
    left, right = (dilation * (size - 1), 0) if causal else (padding, padding)
    x = np.pad(x, ((0, 0), (0, 0), (left, right)))
    batch, c_in, length = x.shape
    c_out, c_group = w.shape[:2]
    n_out = (length - dilation * (size - 1) - 1) // stride + 1
    y = np.zeros((batch, c_out, n_out))
    for n in range(batch):
        for o in range(c_out):
            group = o // (c_out // groups)
            for j in range(n_out):
                total = b[o]
                for c in range(c_group):
                    for k in range(size):
                        total += w[o, c, k] * x[n, group * c_group + c, j * stride + k * dilation]
                y[n, o, j] = total
    return y


SETTINGS = [
    {},
    {"stride": 2},
    {"padding": 2},
    {"dilation": 2},
    {"groups": 2},
    {"causal": True, "dilation": 2},
    {"stride": 2, "padding": 1, "dilation": 2, "groups": 2},
    {"causal": True, "stride": 3, "groups": 4},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_conv1d_equals_the_loop_reference(settings):
    layer = nn.Conv1d(4, 8, 3, rng=0, dtype=np.float64, **settings)
    x = np.random.default_rng(1).standard_normal((2, 4, 11))
    expected = conv1d_reference(x, layer.weight.data, layer.bias.data, **settings)
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_conv1d_passes_gradcheck(settings):
    groups = settings.get("groups", 1)
    x, w, b = random_tensors((2, 4, 7), (4, 4 // groups, 3), (4,), seed=2)
    assert gradcheck(lambda x, w, b: conv1d(x, w, b, **settings), x, w, b)


def test_conv1d_without_bias_passes_gradcheck():
    x, w = random_tensors((1, 2, 5), (3, 2, 2), seed=3)
    assert gradcheck(lambda x, w: conv1d(x, w, stride=2), x, w)


def test_causal_output_keeps_the_length_and_ignores_the_future():
    layer = nn.Conv1d(2, 3, 3, dilation=2, causal=True, rng=0, dtype=np.float64)
    x = np.random.default_rng(4).standard_normal((1, 2, 10))
    y = layer(Tensor(x)).data
    assert y.shape == (1, 3, 10)
    changed = x.copy()
    changed[..., 6:] += 1.0  # the future of position 5
    np.testing.assert_array_equal(layer(Tensor(changed)).data[..., :6], y[..., :6])
    assert not np.allclose(layer(Tensor(changed)).data[..., 6], y[..., 6])


def test_conv1d_layout_initialisation_and_dtype_are_pytorchs():
    layer = nn.Conv1d(6, 4, 5, groups=2, rng=0)
    assert [(k, v.shape) for k, v in layer.state_dict().items()] == [
        ("weight", (4, 3, 5)),
        ("bias", (4,)),
    ]
    assert list(nn.Conv1d(6, 4, 5, bias=False).state_dict()) == ["weight"]
    bound = 1 / np.sqrt(3 * 5)
    for p in layer.parameters():
        assert p.dtype == np.float32
        assert bound * 0.8 < np.abs(p.data).max() <= bound
    y = layer(Tensor(np.ones((2, 6, 9), np.float32)))
    assert y.shape == (2, 4, 5) and y.dtype == np.float32


def test_conv1d_bad_input_is_a_clear_error():
    layer = nn.Conv1d(4, 6, 3)
    with pytest.raises(ValueError, match=r"input must be \(B, C_in, L\), got shape \(4, 10\)"):
        layer(Tensor(np.zeros((4, 10), np.float32)))
    with pytest.raises(ValueError, match=r"input has 5 channels .* expects 4"):
        layer(Tensor(np.zeros((2, 5, 10), np.float32)))
    with pytest.raises(ValueError, match=r"length 2 \(padded to 2\) .* span of 3"):
        layer(Tensor(np.zeros((2, 4, 2), np.float32)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.Conv1d(4, 6, 0), "kernel_size must be an integer >= 1, got 0"),
        (lambda: nn.Conv1d(4, 6, 3, padding=-1), "padding must be an integer >= 0, got -1"),
        (lambda: nn.Conv1d(4, 6, 3, stride=1.5), "stride must be an integer >= 1, got 1.5"),
        (lambda: nn.Conv1d(4, 6, 3, groups=4), "out_channels=6 is not divisible by groups=4"),
        (lambda: nn.Conv1d(4, 6, 3, groups=3), "in_channels=4 is not divisible by groups=3"),
        (lambda: nn.Conv1d(4, 6, 3, padding=2, causal=True), "padding must be 0, got 2"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
