"""Train a character-level language model on Python's documentation, then sample from it.

The model is Bengio et al.'s (2003) neural language model: embed the previous `context`
characters, concatenate, one hidden layer, and a softmax over the next character. It
uses nothing but minigrad, and the corpus ships with every CPython (`pydoc_data`).

    python -m minigrad.demo --steps 6000 --sample-length 400
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from minigrad import Tensor, nn, no_grad, optim, save
from minigrad import functional as F


def load_default_corpus() -> str:
    """About 465 KB of English prose: the topics of Python's reference documentation."""
    import pydoc_data.topics

    return "\n".join(pydoc_data.topics.topics.values())


class CharMLP(nn.Module):
    """Next-character model: ids (B, context) -> logits (B, vocab_size)."""

    def __init__(self, vocab_size: int, context: int, embed_dim: int, hidden: int, rng) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(vocab_size, embed_dim, rng=rng)
        self.hidden = nn.Linear(context * embed_dim, hidden, rng=rng)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, vocab_size, rng=rng)

    def forward(self, ids: np.ndarray) -> Tensor:
        B = ids.shape[0]
        x = self.embed(ids).reshape(B, -1)  # (B, context * embed_dim)
        h = F.gelu(self.norm(self.hidden(x)), approximate="tanh")  # (B, hidden)
        return self.out(h)  # (B, vocab_size)


def sample_batch(data: np.ndarray, context: int, batch_size: int, rng) -> tuple:
    starts = rng.integers(0, len(data) - context - 1, batch_size)
    windows = data[starts[:, None] + np.arange(context + 1)]  # (B, context + 1)
    return windows[:, :-1], windows[:, -1]


def generate(model: CharMLP, prompt_ids: list[int], length: int, temperature: float, rng) -> list:
    ids = list(prompt_ids)
    with no_grad():
        for _ in range(length):
            logits = model(np.array([ids[-model.context :]])).data[0] / temperature
            probs = np.exp(logits - logits.max())
            ids.append(int(rng.choice(len(probs), p=probs / probs.sum())))
    return ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--context", type=int, default=16)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--sample-length", type=int, default=400)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained weights here (.safetensors)")
    args = parser.parse_args(argv)

    text = load_default_corpus()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = np.array([index[c] for c in text])
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    print(f"corpus: {len(text):,} characters, vocabulary of {len(chars)}")

    rng = np.random.default_rng(args.seed)
    model = CharMLP(len(chars), args.context, args.embed_dim, args.hidden, rng=rng)
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = optim.WarmupCosine(opt, warmup_steps=100, total_steps=args.steps)
    print(f"model: {model.num_parameters():,} parameters")

    start = time.perf_counter()
    progress = tqdm(range(args.steps), desc="training", mininterval=1.0)
    for _ in progress:
        x, y = sample_batch(train, args.context, args.batch_size, rng)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    elapsed = time.perf_counter() - start

    with no_grad():
        x, y = sample_batch(val, args.context, 4096, np.random.default_rng(1))
        val_loss = F.cross_entropy(model(x), y).item()
    print(f"trained {args.steps} steps in {elapsed:.1f}s; validation loss {val_loss:.3f} nats/char")

    if args.save:
        config = {"chars": "".join(chars), "context": args.context,
                  "embed_dim": args.embed_dim, "hidden": args.hidden}  # fmt: skip
        save(model, args.save, config=config)
        print(f"weights written to {args.save}")

    prompt = "The "
    ids = generate(model, [index[" "]] * args.context + [index[c] for c in prompt],
                   args.sample_length, args.temperature, rng)  # fmt: skip
    print("\nsample:\n" + prompt + "".join(chars[i] for i in ids[args.context + len(prompt) :]))


if __name__ == "__main__":
    main()
