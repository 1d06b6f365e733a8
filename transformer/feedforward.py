"""The position-wise feed-forward network, and a mixture of experts that replaces it.

Attention moves information between positions; the feed-forward network (FFN) then
processes each position on its own: widen to `hidden` channels (4 * d_model by default),
apply a nonlinearity, narrow back. Most of a transformer's parameters live here.

A mixture of experts (MoE) keeps many FFNs ("experts") and sends each token to only the
top_k of them, chosen by a small learned router: the parameter count grows with the number
of experts while the compute per token stays that of top_k FFNs (Shazeer et al. 2017,
GShard 2020, Switch Transformer 2021).

Shapes use the (B, T, C) vocabulary: batch, time (sequence position), channels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import Tensor, concatenate
from minigrad import functional as F
from minigrad.nn import Dropout, Linear, Module, Parameter, RngLike, make_rng

ACTIVATIONS = ("relu", "gelu", "gelu_tanh")


def activate(x: Tensor, activation: str) -> Tensor:
    """relu, gelu (exact, BERT) or gelu_tanh (the tanh approximation, GPT-2)."""
    if activation == "relu":
        return F.relu(x)
    if activation == "gelu":
        return F.gelu(x)
    if activation == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


class FeedForward(Module):
    """FFN(x) = dropout(act(x W_up^T + b_up) W_down^T + b_down).   x (B, T, C) -> (B, T, C).

    `up` is Linear(C, hidden), `down` Linear(hidden, C); hidden defaults to 4 * d_model.
    """

    def __init__(
        self,
        d_model: int,
        hidden: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        bias: bool = True,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        rng = make_rng(rng)
        self.d_model = d_model
        self.hidden = 4 * d_model if hidden is None else hidden
        self.activation = activation
        self.up = Linear(d_model, self.hidden, bias=bias, rng=rng, dtype=dtype)
        self.down = Linear(self.hidden, d_model, bias=bias, rng=rng, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        h = activate(self.up(x), self.activation)  # (B, T, hidden)
        return self.dropout(self.down(h))  # (B, T, C)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, hidden={self.hidden}, activation={self.activation}"


class MoE(Module):
    """Mixture of experts:  x (B, T, C) -> (B, T, C), each token through its top_k experts.

    Routing. The router, Linear(C, n_experts) without bias, gives logits; p = softmax over
    experts. Each token goes to the top_k experts by p. With top_k = 1 (Switch) the output
    is p_e * expert_e(x), the raw probability keeping the router differentiable; with
    top_k > 1 the chosen probabilities are renormalised to sum to 1 (g = p_e / sum of the
    chosen p) and the output is sum over chosen e of g_e * expert_e(x).

    Capacity. With `capacity_factor`, each expert takes at most
    capacity = ceil(capacity_factor * tokens * top_k / n_experts) tokens, first come first
    served in token order (flattened B, T; a token's choices in rank order). A token over
    capacity gets 0 from that expert: in a block, the residual connection carries it through
    unchanged. Without a capacity factor no token is dropped.

    Dispatch is vectorised: slots are grouped by expert with a stable argsort and bincount,
    gathered into one buffer (n_experts, capacity, C), and all experts run as one batched
    matmul; the results are gathered back per token. No Python loop over tokens or experts.

    Weights: expert e is an FFN whose Linear weights are `w_up[e]` (hidden, C), `b_up[e]`,
    `w_down[e]` (C, hidden), `b_down[e]` (PyTorch's (out, in) layout per expert).

    After each call, for the training loss and for plots:
      aux_loss  Switch load-balancing loss n_experts * sum_i f_i P_i (a Tensor), with f_i
                the fraction of tokens whose top-1 choice is expert i and P_i the mean
                router probability of expert i; it is 1 when routing is uniform.
      z_loss    router z-loss mean over tokens of logsumexp(logits)^2 (ST-MoE; a Tensor),
                keeping router logits small.
      tokens_per_expert  (n_experts,) ints, tokens routed to each expert (before capacity).
      dropped_tokens     number of (token, expert) assignments dropped by the capacity.
      dropped_mask       (B, T, top_k) bools, True where a token's choice was dropped.
      capacity           the per-expert capacity used.
    """

    def __init__(
        self,
        d_model: int,
        n_experts: int,
        top_k: int = 1,
        hidden: int | None = None,
        activation: str = "relu",
        capacity_factor: float | None = None,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if not isinstance(n_experts, (int, np.integer)) or n_experts < 1:
            raise ValueError(f"n_experts must be a positive integer, got {n_experts!r}")
        if not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k={top_k!r} must be between 1 and n_experts={n_experts}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if capacity_factor is not None and capacity_factor <= 0:
            raise ValueError(f"capacity_factor must be positive, got {capacity_factor}")
        rng = make_rng(rng)
        self.d_model, self.n_experts, self.top_k = d_model, n_experts, top_k
        self.hidden = 4 * d_model if hidden is None else hidden
        self.activation, self.capacity_factor = activation, capacity_factor
        self.router = Linear(d_model, n_experts, bias=False, rng=rng, dtype=dtype)
        E, H, C = n_experts, self.hidden, d_model
        bound_up, bound_down = 1 / math.sqrt(C), 1 / math.sqrt(H)  # as nn.Linear
        self.w_up = Parameter(rng.uniform(-bound_up, bound_up, (E, H, C)).astype(dtype))
        self.b_up = Parameter(rng.uniform(-bound_up, bound_up, (E, H)).astype(dtype))
        self.w_down = Parameter(rng.uniform(-bound_down, bound_down, (E, C, H)).astype(dtype))
        self.b_down = Parameter(rng.uniform(-bound_down, bound_down, (E, C)).astype(dtype))
        self.aux_loss: Tensor | None = None
        self.z_loss: Tensor | None = None
        self.tokens_per_expert: np.ndarray | None = None
        self.dropped_tokens = 0
        self.capacity = 0

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(f"MoE(d_model={self.d_model}) got input of shape {x.shape}")
        E, k, C = self.n_experts, self.top_k, self.d_model
        tokens = x.reshape(-1, C)  # (N, C), N = B * T
        N = tokens.shape[0]

        # --- routing: which experts, with which weights
        logits = self.router(tokens)  # (N, E)
        probs = F.softmax(logits, axis=-1)  # (N, E)
        chosen = np.argsort(-probs.data, axis=-1, kind="stable")[:, :k]  # (N, k), best first
        gates = probs[np.arange(N)[:, None], chosen]  # (N, k)
        if k > 1:
            gates = gates / gates.sum(axis=-1, keepdims=True)  # renormalise over the chosen

        # --- capacity: each (token, choice) "slot" gets a position in its expert's queue
        expert_of_slot = chosen.reshape(-1)  # (N * k,), slot s = token s // k, choice s % k
        token_of_slot = np.repeat(np.arange(N), k)  # (N * k,)
        counts = np.bincount(expert_of_slot, minlength=E)  # (E,) slots routed to each expert
        order = np.argsort(expert_of_slot, kind="stable")  # slots grouped by expert, in order
        starts = np.cumsum(counts) - counts  # where each expert's group begins in `order`
        position = np.empty(N * k, dtype=np.int64)
        position[order] = np.arange(N * k) - starts[expert_of_slot[order]]
        if self.capacity_factor is None:
            capacity = max(int(counts.max()), 1)  # room for everyone
        else:
            capacity = math.ceil(self.capacity_factor * N * k / E)
        kept = position < capacity  # (N * k,)

        # --- dispatch: gather each expert's tokens into a buffer (E, capacity, C)
        buffer_row = expert_of_slot * capacity + position  # (N * k,) row in the flat buffer
        buffer_token = np.full(E * capacity, N)  # index N reads the zero row (an empty seat)
        buffer_token[buffer_row[kept]] = token_of_slot[kept]
        zero_row = Tensor(np.zeros((1, C), dtype=x.dtype))
        padded_tokens = concatenate([tokens, zero_row], axis=0)  # (N + 1, C)
        expert_in = padded_tokens[buffer_token].reshape(E, capacity, C)

        # --- every expert at once: a batched FFN over the expert axis
        h = expert_in @ self.w_up.swapaxes(1, 2) + self.b_up[:, None, :]  # (E, capacity, H)
        h = activate(h, self.activation)
        expert_out = h @ self.w_down.swapaxes(1, 2) + self.b_down[:, None, :]  # (E, capacity, C)

        # --- combine: each slot reads its expert's output row (dropped slots read zeros)
        out_rows = concatenate([expert_out.reshape(E * capacity, C), zero_row], axis=0)
        slot_row = np.where(kept, buffer_row, E * capacity)  # (N * k,)
        slot_out = out_rows[slot_row].reshape(N, k, C)  # (N, k, C)
        y = (slot_out * gates.reshape(N, k, 1)).sum(axis=1)  # (N, C)

        # --- the router's auxiliary losses and statistics
        top1_fraction = np.bincount(chosen[:, 0], minlength=E).astype(x.dtype) / N  # f_i (E,)
        mean_prob = probs.mean(axis=0)  # P_i (E,)
        self.aux_loss = (mean_prob * top1_fraction).sum() * E
        log_z = F.logsumexp(logits, axis=-1)  # (N,)
        self.z_loss = (log_z * log_z).mean()
        self.tokens_per_expert = counts
        self.dropped_tokens = int((~kept).sum())
        self.dropped_mask = ~kept.reshape(*x.shape[:-1], k)  # (B, T, k)
        self.capacity = capacity
        return y.reshape(x.shape)  # (B, T, C)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_experts={self.n_experts}, top_k={self.top_k}, "
            f"hidden={self.hidden}, capacity_factor={self.capacity_factor}"
        )
