"""Train the project's GPT and a GPT written independently in PyTorch side by side.

Same shape, same hyper-parameters (AdamW with decay on matrices only, warmup + cosine,
gradient clipping), same batches, same evaluation batches; the PyTorch model is written
here from the GPT-2 recipe, not from this project's code. Both start from the same weights
(copied from the project's model) unless --own-init, where PyTorch draws its own.
Prints the validation losses side by side; they should agree within noise.

    PYTHONPATH=. /tmp/torchenv/bin/python scripts/compare_training_with_torch.py --steps 600
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as tF

from minigrad.optim import warmup_cosine_lr
from transformer.data import LanguageModelTask, TokenizedCorpus, load_corpus, train_tokenizer
from transformer.models import GPT, GPTConfig
from transformer.train import TrainConfig, Trainer


class TorchBlock(tnn.Module):
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
        y = tF.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_out(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_out(tF.gelu(self.mlp_in(self.ln2(x)), approximate="tanh"))


class TorchGPT(tnn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        C = config.n_embd
        self.wte = tnn.Embedding(config.vocab_size, C)
        self.wpe = tnn.Embedding(config.block_size, C)
        self.blocks = tnn.ModuleList(TorchBlock(C, config.n_head) for _ in range(config.n_layer))
        self.ln_f = tnn.LayerNorm(C)
        for name, p in self.named_parameters():  # GPT-2's initialization
            if name.endswith("bias"):
                tnn.init.zeros_(p)
            elif p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * config.n_layer) if "_out" in name else 0.02
                tnn.init.normal_(p, 0.0, std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.T
        return tF.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def copy_from(self, model: GPT) -> None:
        """The project's weights, name by name (both store Linear weights as (out, in))."""
        ours = {name: p.data for name, p in model.named_parameters()}
        pairs = {"wte.weight": "token_embedding.weight", "wpe.weight": "position.weight",
                 "ln_f.weight": "ln_final.weight", "ln_f.bias": "ln_final.bias"}  # fmt: skip
        for i in range(len(self.blocks)):
            for theirs, mine in [("ln1", "ln_self_attn"), ("ln2", "ln_ffn"),
                                 ("attn_in", "self_attn.qkv"), ("attn_out", "self_attn.out"),
                                 ("mlp_in", "ffn.up"), ("mlp_out", "ffn.down")]:  # fmt: skip
                for kind in ("weight", "bias"):
                    pairs[f"blocks.{i}.{theirs}.{kind}"] = f"blocks.{i}.{mine}.{kind}"
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.from_numpy(ours[pairs[name]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-interval", type=int, default=100)
    parser.add_argument("--own-init", action="store_true", help="PyTorch draws its own weights")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    text = load_corpus()
    tokenizer = train_tokenizer(text)
    task = LanguageModelTask(TokenizedCorpus.from_text(text, tokenizer), 64)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=4, n_head=4,
                       n_embd=128)  # fmt: skip
    train = TrainConfig(steps=args.steps, batch_size=16, lr=2e-3, warmup_steps=100,
                        eval_interval=args.eval_interval, eval_batches=40)  # fmt: skip
    ours = Trainer(GPT(config, rng=0), task, train, progress=False)

    theirs = TorchGPT(config)
    if not args.own_init:
        theirs.copy_from(ours.model)
    params = list(theirs.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": train.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=train.lr, betas=(train.beta1, train.beta2),
    )  # fmt: skip
    data_rng = np.random.default_rng(train.seed)  # the same batches as the project's trainer

    def torch_eval() -> float:
        rng, losses = np.random.default_rng([train.seed, 1]), []
        with torch.no_grad():
            for _ in range(train.eval_batches):
                x, y = task.batch("val", train.batch_size, rng)
                losses.append(theirs(torch.from_numpy(x), torch.from_numpy(y)).item())
        return float(np.mean(losses))

    print(f"{'step':>6} {'project val':>12} {'pytorch val':>12} {'difference':>11}")
    seconds = {"project": 0.0, "pytorch": 0.0}
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        row = ours.train_step()
        seconds["project"] += time.perf_counter() - start

        start = time.perf_counter()
        x, y = task.batch("train", train.batch_size, data_rng)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step - 1, train.lr, train.warmup_steps,
                                           train.decay_steps, train.floor_lr)  # fmt: skip
        loss = theirs(torch.from_numpy(x), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), train.grad_clip)
        optimizer.step()
        seconds["pytorch"] += time.perf_counter() - start

        if step % args.eval_interval == 0 or step == args.steps:
            a, b = ours.evaluate()["val_loss"], torch_eval()
            print(f"{step:>6} {a:>12.4f} {b:>12.4f} {a - b:>+11.4f}   "
                  f"(train loss {row['loss']:.4f} / {loss.item():.4f})", flush=True)  # fmt: skip
    print(
        f"training time: project {seconds['project']:.1f} s, PyTorch eager "
        f"{seconds['pytorch']:.1f} s ({torch.get_num_threads()} threads)"
    )


if __name__ == "__main__":
    main()
