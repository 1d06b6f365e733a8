"""A GPT written independently in PyTorch, the reference the project's GPT is measured against.

The GPT-2 recipe (learned positions, pre-LN blocks, tanh GELU, a head tied to the token
embedding), written here from the paper's description, not from the project's code. It
imports only torch: `benchmarks/bench_train.py` runs it in a subprocess of another
interpreter, and `scripts/compare_training_with_torch.py` trains it beside the project's.
`load_project_weights` copies a project GPT's `state_dict()` (both store a Linear's weight as
(out, in)), so the two can start from the same numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as tnn
import torch.nn.functional as tF


class TorchBlock(tnn.Module):
    """x + attn(ln1(x)), then x + mlp(ln2(x)):  (B, T, C) -> (B, T, C)."""

    def __init__(self, C: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = tnn.LayerNorm(C), tnn.LayerNorm(C)
        self.attn_in, self.attn_out = tnn.Linear(C, 3 * C), tnn.Linear(C, C)
        self.mlp_in, self.mlp_out = tnn.Linear(C, 4 * C), tnn.Linear(4 * C, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.attn_in(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = tF.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, n_head, T, d_head)
        x = x + self.attn_out(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_out(tF.gelu(self.mlp_in(self.ln2(x)), approximate="tanh"))


class TorchGPT(tnn.Module):
    """ids (B, T), targets (B, T) -> the mean next-token cross-entropy."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int,
                 n_embd: int) -> None:  # fmt: skip
        super().__init__()
        C = n_embd
        self.wte = tnn.Embedding(vocab_size, C)
        self.wpe = tnn.Embedding(block_size, C)
        self.blocks = tnn.ModuleList(TorchBlock(C, n_head) for _ in range(n_layer))
        self.ln_f = tnn.LayerNorm(C)
        for name, p in self.named_parameters():  # GPT-2's initialization
            if name.endswith("bias"):
                tnn.init.zeros_(p)
            elif p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if "_out" in name else 0.02
                tnn.init.normal_(p, 0.0, std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.T  # (B, T, vocab_size)
        return tF.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def project_names(self) -> dict[str, str]:
        """This model's parameter names -> the project GPT's state-dict keys."""
        pairs = {"wte.weight": "token_embedding.weight", "wpe.weight": "position.weight",
                 "ln_f.weight": "ln_final.weight", "ln_f.bias": "ln_final.bias"}  # fmt: skip
        for i in range(len(self.blocks)):
            for theirs, mine in [("ln1", "ln_self_attn"), ("ln2", "ln_ffn"),
                                 ("attn_in", "self_attn.qkv"), ("attn_out", "self_attn.out"),
                                 ("mlp_in", "ffn.up"), ("mlp_out", "ffn.down")]:  # fmt: skip
                for kind in ("weight", "bias"):
                    pairs[f"blocks.{i}.{theirs}.{kind}"] = f"blocks.{i}.{mine}.{kind}"
        return pairs

    def load_project_weights(self, state: dict) -> None:
        """Copy the project GPT's arrays (its `state_dict()`, NumPy arrays) in, name by name."""
        names = self.project_names()
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.from_numpy(state[names[name]]))
