"""RNN, LSTM and GRU: gradient checks through time, the cell equations step by step in
NumPy, PyTorch's parameter names and shapes, and clear errors for bad input."""

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, nn, random_tensors
from minigrad.ops import sigmoid_array
from minigrad.recurrent import _time_steps


def flat(result):
    """(output, h_n) or (output, (h_n, c_n)) as a flat tuple of tensors for gradcheck."""
    output, final = result
    return (output, *final) if isinstance(final, tuple) else (output, final)


def gradcheck_module(module, forward, *inputs):
    """gradcheck of forward(module, *inputs) over the inputs and every parameter of `module`."""
    n = len(inputs)
    return gradcheck(lambda *tensors: forward(module, *tensors[:n]), *inputs, *module.parameters())


LAYERS = {
    "rnn_tanh": lambda **kw: nn.RNN(2, 3, **kw),
    "rnn_relu": lambda **kw: nn.RNN(2, 3, nonlinearity="relu", **kw),
    "lstm": lambda **kw: nn.LSTM(2, 3, **kw),
    "gru": lambda **kw: nn.GRU(2, 3, **kw),
}
T, B = 3, 2


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize(
    "num_layers, with_state, batch_first",
    [(1, False, False), (1, True, True), (2, True, False), (2, False, True)],
)
def test_gradients_through_time_pass_gradcheck(kind, num_layers, with_state, batch_first):
    layer = LAYERS[kind](num_layers=num_layers, batch_first=batch_first, rng=1, dtype=np.float64)
    (x,) = random_tensors((B, T, 2) if batch_first else (T, B, 2), seed=2)
    states = random_tensors(*[(num_layers, B, 3)] * (2 if kind == "lstm" else 1), seed=3)
    if not with_state:
        assert gradcheck_module(layer, lambda call, x: flat(call(x)), x)
    elif kind == "lstm":
        assert gradcheck_module(layer, lambda call, x, h, c: flat(call(x, (h, c))), x, *states)
    else:
        assert gradcheck_module(layer, lambda call, x, h: flat(call(x, h)), x, *states)


def test_gradcheck_without_bias():
    layer = nn.GRU(2, 3, bias=False, rng=0, dtype=np.float64)
    (x,) = random_tensors((T, B, 2), seed=4)
    assert gradcheck_module(layer, lambda call, x: flat(call(x)), x)


def test_time_steps_taken_by_halving_are_the_plain_slices_with_their_gradients():
    (x,) = random_tensors((7, 2, 3), seed=5)
    steps = _time_steps(x)
    assert len(steps) == 7
    for t, step in enumerate(steps):
        np.testing.assert_array_equal(step.data, x.data[t])
    sum((step * (t + 1.0)).sum() for t, step in enumerate(steps)).backward()
    np.testing.assert_array_equal(x.grad, np.arange(1.0, 8.0)[:, None, None] * np.ones((7, 2, 3)))


# ---------------------------------------------------------------- the equations in NumPy
def numpy_weights(layer, k):
    w = {name: p.data for name, p in layer.named_parameters()}
    return w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"], w[f"bias_ih_l{k}"], w[f"bias_hh_l{k}"]


def lstm_reference(layer, x, h0, c0):
    """The LSTM's equations one step at a time: x (T, B, in), h0 and c0 (L, B, H)."""
    H = layer.hidden_size
    hs, cs = [], []
    for k in range(layer.num_layers):
        w_ih, w_hh, b_ih, b_hh = numpy_weights(layer, k)
        W_ii, W_if, W_ig, W_io = (w_ih[j * H : (j + 1) * H] for j in range(4))
        W_hi, W_hf, W_hg, W_ho = (w_hh[j * H : (j + 1) * H] for j in range(4))
        b_i, b_f, b_g, b_o = ((b_ih + b_hh)[j * H : (j + 1) * H] for j in range(4))
        h, c, outputs = h0[k], c0[k], []
        for x_t in x:
            i = sigmoid_array(x_t @ W_ii.T + h @ W_hi.T + b_i)
            f = sigmoid_array(x_t @ W_if.T + h @ W_hf.T + b_f)
            g = np.tanh(x_t @ W_ig.T + h @ W_hg.T + b_g)
            o = sigmoid_array(x_t @ W_io.T + h @ W_ho.T + b_o)
            c = f * c + i * g
            h = o * np.tanh(c)
            outputs.append(h)
        x = np.stack(outputs)
        hs.append(h)
        cs.append(c)
    return x, np.stack(hs), np.stack(cs)


def gru_reference(layer, x, h0):
    """The GRU's equations one step at a time; the reset gate scales W_hn h + b_hn."""
    H = layer.hidden_size
    hs = []
    for k in range(layer.num_layers):
        w_ih, w_hh, b_ih, b_hh = numpy_weights(layer, k)
        W_ir, W_iz, W_in = (w_ih[j * H : (j + 1) * H] for j in range(3))
        W_hr, W_hz, W_hn = (w_hh[j * H : (j + 1) * H] for j in range(3))
        b_ir, b_iz, b_in = (b_ih[j * H : (j + 1) * H] for j in range(3))
        b_hr, b_hz, b_hn = (b_hh[j * H : (j + 1) * H] for j in range(3))
        h, outputs = h0[k], []
        for x_t in x:
            r = sigmoid_array(x_t @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
            z = sigmoid_array(x_t @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
            n = np.tanh(x_t @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
            h = (1 - z) * n + z * h
            outputs.append(h)
        x = np.stack(outputs)
        hs.append(h)
    return x, np.stack(hs)


def rnn_reference(layer, x, h0, activation):
    hs = []
    for k in range(layer.num_layers):
        w_ih, w_hh, b_ih, b_hh = numpy_weights(layer, k)
        h, outputs = h0[k], []
        for x_t in x:
            h = activation(x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            outputs.append(h)
        x = np.stack(outputs)
        hs.append(h)
    return x, np.stack(hs)


def sequence_and_states(n_states, seed=0, length=5, batch=3, width=4, layers=2, hidden=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((length, batch, width))
    return x, [rng.standard_normal((layers, batch, hidden)) for _ in range(n_states)]


def test_lstm_equals_its_equations_step_by_step():
    layer = nn.LSTM(4, 6, 2, rng=0, dtype=np.float64)
    x, (h0, c0) = sequence_and_states(2)
    output, (h_n, c_n) = layer(Tensor(x), (Tensor(h0), Tensor(c0)))
    expected = lstm_reference(layer, x, h0, c0)
    for mine, theirs in zip((output, h_n, c_n), expected):
        np.testing.assert_allclose(mine.data, theirs, rtol=1e-12, atol=1e-12)


def test_gru_equals_its_equations_step_by_step():
    layer = nn.GRU(4, 6, 2, batch_first=True, rng=0, dtype=np.float64)
    x, (h0,) = sequence_and_states(1, seed=1)
    output, h_n = layer(Tensor(x.transpose(1, 0, 2)), Tensor(h0))
    expected_output, expected_h_n = gru_reference(layer, x, h0)
    np.testing.assert_allclose(output.data, expected_output.transpose(1, 0, 2), rtol=1e-12)
    np.testing.assert_allclose(h_n.data, expected_h_n, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "nonlinearity, activation", [("tanh", np.tanh), ("relu", lambda a: np.maximum(a, 0))]
)
def test_rnn_equals_its_equation_step_by_step(nonlinearity, activation):
    layer = nn.RNN(4, 6, 2, nonlinearity=nonlinearity, rng=0, dtype=np.float64)
    x, (h0,) = sequence_and_states(1, seed=2)
    output, h_n = layer(Tensor(x), Tensor(h0))
    expected_output, expected_h_n = rnn_reference(layer, x, h0, activation)
    np.testing.assert_allclose(output.data, expected_output, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n.data, expected_h_n, rtol=1e-12, atol=1e-12)


def test_no_initial_state_means_zeros_and_the_output_ends_with_the_last_layer_state():
    layer = nn.LSTM(4, 6, 2, rng=0, dtype=np.float64)
    x, _ = sequence_and_states(0, seed=3)
    zeros = Tensor(np.zeros((2, 3, 6)))
    output, (h_n, c_n) = layer(Tensor(x))
    output_z, (h_z, c_z) = layer(Tensor(x), (zeros, zeros))
    np.testing.assert_array_equal(output.data, output_z.data)
    np.testing.assert_array_equal(c_n.data, c_z.data)
    np.testing.assert_array_equal(output.data[-1], h_n.data[-1])


# ---------------------------------------------------------------- PyTorch's layout
def shapes(layer):
    return [(name, p.shape) for name, p in layer.state_dict().items()]


def test_state_dict_keys_and_shapes_are_pytorchs():
    assert shapes(nn.RNN(5, 7, 2)) == [
        ("weight_ih_l0", (7, 5)), ("weight_hh_l0", (7, 7)), ("bias_ih_l0", (7,)),
        ("bias_hh_l0", (7,)), ("weight_ih_l1", (7, 7)), ("weight_hh_l1", (7, 7)),
        ("bias_ih_l1", (7,)), ("bias_hh_l1", (7,)),
    ]  # fmt: skip
    assert shapes(nn.LSTM(5, 7, 2)) == [
        ("weight_ih_l0", (28, 5)), ("weight_hh_l0", (28, 7)), ("bias_ih_l0", (28,)),
        ("bias_hh_l0", (28,)), ("weight_ih_l1", (28, 7)), ("weight_hh_l1", (28, 7)),
        ("bias_ih_l1", (28,)), ("bias_hh_l1", (28,)),
    ]  # fmt: skip
    assert shapes(nn.GRU(5, 7)) == [
        ("weight_ih_l0", (21, 5)), ("weight_hh_l0", (21, 7)), ("bias_ih_l0", (21,)),
        ("bias_hh_l0", (21,)),
    ]  # fmt: skip
    assert shapes(nn.LSTM(5, 7, bias=False)) == [
        ("weight_ih_l0", (28, 5)),
        ("weight_hh_l0", (28, 7)),
    ]


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_weights_start_uniform_in_one_over_sqrt_hidden_in_the_chosen_dtype(cls):
    layer = cls(4, 16, 2, rng=0)
    bound = 1 / 4
    for name, p in layer.named_parameters():
        assert p.dtype == np.float32, name
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.8 * bound, name
    assert cls(4, 16, 2, rng=0).state_dict()["weight_hh_l1"].tolist() == (
        layer.weight_hh_l1.data.tolist()
    )
    output, _ = layer(Tensor(np.ones((3, 2, 4), np.float32)))
    assert output.dtype == np.float32


def test_dropout_between_layers_acts_only_in_training():
    layer = nn.GRU(4, 6, 2, dropout=0.5, rng=0, dtype=np.float64)
    plain = nn.GRU(4, 6, 2, rng=0, dtype=np.float64)
    x = Tensor(sequence_and_states(0, seed=4)[0])
    assert not np.allclose(layer(x)[0].data, plain(x)[0].data)
    layer.eval()
    np.testing.assert_array_equal(layer(x)[0].data, plain(x)[0].data)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_an_input_of_the_wrong_rank_or_width_is_a_clear_error(cls):
    layer = cls(4, 6)
    with pytest.raises(ValueError, match=r"input must be \(T, B, input_size\), got shape \(5, 4\)"):
        layer(Tensor(np.zeros((5, 4), np.float32)))
    with pytest.raises(ValueError, match=r"3 features .* input_size=4"):
        layer(Tensor(np.zeros((5, 2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"\(B, T, input_size\)"):
        cls(4, 6, batch_first=True)(Tensor(np.zeros((2, 5, 4, 1), np.float32)))


def test_a_state_of_the_wrong_shape_is_a_clear_error():
    x = Tensor(np.zeros((5, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 3, 6\), expected .* \(2, 3, 6\)"):
        nn.GRU(4, 6, 2)(x, Tensor(np.zeros((1, 3, 6), np.float32)))
    h = Tensor(np.zeros((1, 3, 6), np.float32))
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 3, 6\), expected .* \(1, 2, 6\)"):
        nn.RNN(4, 6, batch_first=True)(Tensor(np.zeros((2, 3, 4), np.float32)), h)
    with pytest.raises(ValueError, match=r"pair \(h_0, c_0\), got Tensor"):
        nn.LSTM(4, 6)(x, h)
    with pytest.raises(ValueError, match=r"c_0 has shape \(1, 3, 5\)"):
        nn.LSTM(4, 6)(x, (h, Tensor(np.zeros((1, 3, 5), np.float32))))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.RNN(4, 0), "hidden_size must be a positive integer, got 0"),
        (lambda: nn.LSTM(4.0, 6), "input_size must be a positive integer, got 4.0"),
        (lambda: nn.GRU(4, 6, num_layers=0), "num_layers must be a positive integer, got 0"),
        (lambda: nn.RNN(4, 6, nonlinearity="sigmoid"), "'tanh' or 'relu', got 'sigmoid'"),
        (lambda: nn.LSTM(4, 6, 2, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
