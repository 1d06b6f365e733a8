"""Continue training, in PyTorch, a GPT that was trained here and exported as GPT-2.

This script is the way out of NumPy: it runs in an environment with PyTorch and Hugging Face
`transformers` (not the project's: its `tokenizers` package would hide Hugging Face's), on
CPU, a GPU, or several devices with `accelerate`. It imports nothing from the project.

    # in the project's environment: write the GPT-2 directory
    python -m transformer export --checkpoint runs/tiny --out exported

    # in a PyTorch environment (pip install torch transformers)
    python examples/continue_in_pytorch.py exported --data corpus.txt --out continued

    # on several GPUs (pip install accelerate; `accelerate config` once)
    accelerate launch examples/continue_in_pytorch.py exported --data corpus.txt \
        --out continued --accelerate

The loop is plain PyTorch: random windows of the corpus, next-token cross-entropy (the model
shifts the labels itself), AdamW, gradient clipping. `--out` is again a GPT-2 directory:
`transformer.pretrained.load_gpt2(out)` brings the model back to the project, and
`python -m transformer sample --hf out` samples from it there.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a GPT-2 directory written by export_gpt2")
    parser.add_argument("--data", type=Path, required=True, help="a UTF-8 text file to train on")
    parser.add_argument("--out", type=Path, required=True, help="where to save the result")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, help="window length (default: the model's)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--accelerate",
        action="store_true",
        help="use Hugging Face accelerate (start with `accelerate launch` for several devices)",
    )
    args = parser.parse_args()
    for name in ("model", "data"):
        if not getattr(args, name).exists():
            parser.error(f"{getattr(args, name)} does not exist")
    if args.steps < 1 or args.batch_size < 1 or args.lr <= 0:
        parser.error("--steps, --batch-size and --lr must be positive")
    return args


def main() -> None:
    args = parse_args()
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    accelerator = None
    if args.accelerate:
        from accelerate import Accelerator

        accelerator = Accelerator()
        device = accelerator.device
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rank = accelerator.process_index if accelerator else 0
    is_main = accelerator is None or accelerator.is_main_process
    torch.manual_seed(args.seed + rank)  # each process draws its own batches

    model = GPT2LMHeadModel.from_pretrained(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    block = args.block_size or model.config.n_positions
    if block > model.config.n_positions:
        sys.exit(f"--block-size {block} is longer than the model's {model.config.n_positions}")

    text = args.data.read_text(encoding="utf-8")
    ids = tokenizer(text, verbose=False)["input_ids"]  # the whole corpus, no length warning
    data = torch.tensor(ids, dtype=torch.long)
    split = int(0.9 * len(data))
    train, held_out = data[:split], data[split:]
    if len(held_out) <= block:
        sys.exit(f"{args.data} is too short: {len(data)} tokens for windows of {block + 1}")

    def batch(source: torch.Tensor) -> torch.Tensor:
        """(batch_size, block) windows; the model predicts each token from those before it."""
        starts = torch.randint(len(source) - block, (args.batch_size,))
        return torch.stack([source[s : s + block] for s in starts]).to(device)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / args.steps))
    )
    if accelerator:
        model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    else:
        model.to(device)

    @torch.no_grad()
    def held_out_loss() -> float:
        model.eval()
        losses = [model(input_ids=x, labels=x).loss.item() for x in map(batch, [held_out] * 8)]
        model.train()
        return sum(losses) / len(losses)

    model.train()
    for step in range(1, args.steps + 1):
        x = batch(train)
        loss = model(input_ids=x, labels=x).loss  # labels are shifted inside the model
        optimizer.zero_grad(set_to_none=True)
        if accelerator:
            accelerator.backward(loss)
        else:
            loss.backward()
        clip = accelerator.clip_grad_norm_ if accelerator else torch.nn.utils.clip_grad_norm_
        clip(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % args.eval_every == 0 or step == args.steps:
            held = held_out_loss()  # on every process: a wrapped model's forward may sync
            if is_main:
                print(f"step {step}: train loss {loss.item():.3f}, held-out {held:.3f}")

    if accelerator:
        accelerator.wait_for_everyone()
        model = accelerator.unwrap_model(model)
    if is_main:
        model.save_pretrained(args.out)  # config.json + model.safetensors, the GPT-2 layout
        tokenizer.save_pretrained(args.out)
        print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
