"""Train the project's GPT and a GPT written independently in PyTorch side by side.

Same shape, same hyper-parameters (AdamW with decay on matrices only, warmup + cosine,
gradient clipping), same batches, same evaluation batches; the PyTorch model
(benchmarks/torch_gpt.py) is written from the GPT-2 recipe, not from this project's code.
Both start from the same weights (copied from the project's model) unless --own-init,
where PyTorch draws its own.
Prints the validation losses side by side; they should agree within noise.

    PYTHONPATH=. /tmp/torchenv/bin/python scripts/compare_training_with_torch.py --steps 600
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from minigrad.optim import warmup_cosine_lr
from transformer.data import LanguageModelTask, TokenizedCorpus, load_corpus, train_tokenizer
from transformer.models import GPT, GPTConfig
from transformer.train import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from torch_gpt import TorchGPT  # noqa: E402  (torch-only, shared with bench_train.py)


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

    theirs = TorchGPT(config.vocab_size, config.block_size, config.n_layer, config.n_head,
                      config.n_embd)  # fmt: skip
    if not args.own_init:
        theirs.load_project_weights(ours.model.state_dict())
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
