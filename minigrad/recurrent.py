"""Recurrent layers, shaped as PyTorch's: RNN, LSTM and GRU.

A recurrent layer reads a sequence one step at a time and carries a state from step to
step: h_t = cell(x_t, h_{t-1}). Step t cannot start before step t - 1 is done, so the loop
over time is a Python loop, and the backward pass walks it back from the last step to the
first (backpropagation through time) through the engine's graph of ordinary ops. Only what
does not depend on the state runs in parallel: each layer projects the inputs of all its
steps in one matrix product before the loop, leaving one product with h per step.

Shapes: T time steps, B sequences, H = hidden_size. Inputs (T, B, input_size), or
(B, T, input_size) with `batch_first`; states (num_layers, B, H). Each stacked layer reads
the outputs h_t of the layer below. Parameters carry PyTorch's names and shapes, so weights
move between the two through `state_dict` / `load_state_dict`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import functional as F
from minigrad.nn import Module, Parameter, RngLike, make_rng
from minigrad.ops import split, stack
from minigrad.tensor import Tensor

State = tuple[Tensor, ...]  # one layer's state at one step: (h,), or (h, c) for the LSTM


def _time_steps(x: Tensor) -> list[Tensor]:
    """[x[0], x[1], ..., x[T - 1]], sliced by halving x again and again.

    The plain form, [x[t] for t in range(T)], makes T slices whose backward each writes a
    gradient the size of the whole sequence (zeros but for step t): T^2 in all, which from
    about a hundred steps on costs more than the recurrence itself. Halving gives a tree of
    slices in which each level costs one sequence, T log T in all.
    """
    if len(x) == 1:
        return [x[0]]
    half = len(x) // 2
    return _time_steps(x[:half]) + _time_steps(x[half:])


class _Recurrent(Module):
    """What RNN, LSTM and GRU share: stacked layers with PyTorch's parameter names, shapes and
    initialisation (uniform in +-1/sqrt(H)), the checks, and the loop over time. A subclass
    sets `gates` (blocks of H rows in each weight), `state_names`, and writes `step`."""

    gates = 1
    state_names: tuple[str, ...] = ("h_0",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        rng = make_rng(rng)
        bound = 1 / math.sqrt(hidden_size)
        rows = self.gates * hidden_size
        for k in range(num_layers):
            shapes = {
                f"weight_ih_l{k}": (rows, input_size if k == 0 else hidden_size),
                f"weight_hh_l{k}": (rows, hidden_size),
            }
            if bias:
                shapes.update({f"bias_ih_l{k}": (rows,), f"bias_hh_l{k}": (rows,)})
            for key, shape in shapes.items():
                setattr(self, key, Parameter(rng.uniform(-bound, bound, shape).astype(dtype)))
        self.rng = rng  # draws the dropout between layers

    def step(self, inputs: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None) -> State:
        """One time step of one layer: `inputs` (B, gates * H) is W_ih x_t + b_ih, already
        computed for every step; returns the new state, h first."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """x (T, B, input_size) (batch_first: (B, T, input_size)) and an initial state (zeros
        if None) -> (output, final state). output (T, B, H) (batch_first: (B, T, H)) is the
        last layer's h_t at every step; the final state holds every layer's last h (and c),
        each (num_layers, B, H)."""
        self._check_input(x)
        if self.batch_first:
            x = x.transpose(1, 0, 2)  # (T, B, input_size)
        initial = self._initial_states(state, x.shape[1], x.dtype)
        finals = []
        for k in range(self.num_layers):
            if k and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True, self.rng)
            w_ih, w_hh, b_ih, b_hh = self._weights(k)
            inputs = F.linear(x, w_ih, b_ih)  # (T, B, gates * H): every step's input part
            s = initial[k]
            outputs = []
            for inputs_t in _time_steps(inputs):  # sequential: each step needs the one before
                s = self.step(inputs_t, s, w_hh, b_hh)
                outputs.append(s[0])
            x = stack(outputs)  # (T, B, H)
            finals.append(s)
        output = x.transpose(1, 0, 2) if self.batch_first else x
        final = tuple(stack(per_layer) for per_layer in zip(*finals))  # each (num_layers, B, H)
        return output, final[0] if len(final) == 1 else final

    def _weights(self, k: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Layer k's weight_ih, weight_hh, bias_ih, bias_hh (the biases None without bias)."""
        w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, f"bias_ih_l{k}"), getattr(self, f"bias_hh_l{k}")

    def _check_input(self, x: Tensor) -> None:
        name = type(self).__name__
        if x.ndim != 3:
            layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(f"{name}: input must be {layout}, got shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"{name}: input has {x.shape[2]} features in its last axis, expected "
                f"input_size={self.input_size} (input shape {x.shape})"
            )
        if 0 in x.shape:
            raise ValueError(f"{name}: input of shape {x.shape} is empty")

    def _initial_states(self, state: Any, batch: int, dtype: np.dtype) -> list[State]:
        """Each layer's starting state: zeros, or layer k's slice of the given state."""
        if state is None:
            zeros = Tensor(np.zeros((batch, self.hidden_size), dtype))
            return [(zeros,) * len(self.state_names)] * self.num_layers
        name, names = type(self).__name__, self.state_names
        if len(names) == 1:
            parts = (state,)
        elif isinstance(state, (tuple, list)) and len(state) == len(names):
            parts = tuple(state)
        else:
            raise ValueError(
                f"{name}: the initial state must be a pair ({', '.join(names)}), "
                f"got {type(state).__name__}"
            )
        expected = (self.num_layers, batch, self.hidden_size)
        for part_name, part in zip(names, parts):
            if part.shape != expected:
                raise ValueError(
                    f"{name}: {part_name} has shape {part.shape}, expected (num_layers, B, "
                    f"hidden_size) = {expected}"
                )
        return [tuple(part[k] for part in parts) for k in range(self.num_layers)]

    def extra_repr(self) -> str:
        settings = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            settings.append(f"num_layers={self.num_layers}")
        if not self.bias:
            settings.append("bias=False")
        if self.batch_first:
            settings.append("batch_first=True")
        if self.dropout:
            settings.append(f"dropout={self.dropout}")
        return ", ".join(settings)


class RNN(_Recurrent):
    """The plain (Elman) recurrent network:

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh or relu

    weight_ih_l{k} (H, input_size for k = 0, else H), weight_hh_l{k} (H, H), biases (H,).
    The gradient reaching h_0 is multiplied by W_hh^T act'(.) once per step, so over many
    steps it shrinks or grows geometrically: the vanishing (exploding) gradient.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            rng=rng,
            dtype=dtype,
        )
        self.nonlinearity = nonlinearity

    def step(self, inputs: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None) -> State:
        (h,) = state
        pre = inputs + F.linear(h, w_hh, b_hh)  # (B, H)
        return (pre.tanh() if self.nonlinearity == "tanh" else pre.relu(),)

    def extra_repr(self) -> str:
        extra = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().extra_repr() + extra


class LSTM(_Recurrent):
    """Long short-term memory: a cell c that gates write to, erase and read, so a gradient
    can travel back along c through many steps, scaled only by the forget gates.

        i = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)    input gate
        f = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)    forget gate
        g = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)       candidate
        o = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)    output gate
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    weight_ih_l{k} stacks W_ii, W_if, W_ig, W_io (4H, input_size or H), weight_hh_l{k} the
    W_h. (4H, H), in PyTorch's order. The state is the pair (h, c).
    """

    gates = 4
    state_names = ("h_0", "c_0")

    def step(self, inputs: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None) -> State:
        h, c = state
        gates = inputs + F.linear(h, w_hh, b_hh)  # (B, 4H): the four gates in one product
        i, f, g, o = split(gates, 4, axis=1)  # each (B, H)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c


class GRU(_Recurrent):
    """Gated recurrent unit: an update gate z mixes the old state with a candidate n.

        r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)         reset gate
        z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)         update gate
        n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))      candidate
        h_t = (1 - z) * n + z * h_{t-1}

    The reset gate scales W_hn h + b_hn, bias included, as in PyTorch (and cuDNN).
    weight_ih_l{k} stacks W_ir, W_iz, W_in (3H, input_size or H), weight_hh_l{k} the W_h.
    """

    gates = 3

    def step(self, inputs: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None) -> State:
        (h,) = state
        x_r, x_z, x_n = split(inputs, 3, axis=1)  # each (B, H)
        h_r, h_z, h_n = split(F.linear(h, w_hh, b_hh), 3, axis=1)  # one product for all three
        r = (x_r + h_r).sigmoid()
        z = (x_z + h_z).sigmoid()
        n = (x_n + r * h_n).tanh()
        return ((1 - z) * n + z * h,)
