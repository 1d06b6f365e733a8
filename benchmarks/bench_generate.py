"""Generation speed: the project's GPT with and without its KV cache, against Hugging Face.

    python benchmarks/bench_generate.py --reference-python /path/to/venv/bin/python
    python benchmarks/bench_generate.py --threads 1 --contexts 64

The model is GPT-2-shaped (learned positions, pre-LN, tanh GELU, tied head): n_layer=6,
n_head=6, n_embd=384, vocab 96 (`--vocab-size`), with room for the longest context. Its weights are
exported with `transformer.pretrained.export_gpt2` to a temporary directory, from which
the reference side loads them into Hugging Face's `GPT2LMHeadModel` and runs `generate`
(greedy, use_cache=True, float32). At context T, both continue the same random prompt of
T / 2 tokens by T / 2 new tokens, one sequence, greedily; tokens/s counts the new tokens
over the whole call (prompt included). The project's side generates with its KV cache and
without it (every step runs the whole context again); the new ids of every run are
compared with Hugging Face's. The two processes take turns round by round, and each
figure is the best of `--rounds`.

`--threads N` gives both sides N threads (OPENBLAS_NUM_THREADS for NumPy, torch's
set_num_threads); the default is the machine's core count.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from side_by_side import Side, answer, check_reference, load_average

SHAPE = {"n_layer": 6, "n_head": 6, "n_embd": 384}
EMBEDDING_STD = 0.5  # wider than GPT-2's 0.02: peaked next-token distributions, so that a
# greedy choice does not hang on a float32 rounding difference between two implementations


def prompt_ids(length: int, vocab_size: int) -> list[int]:
    """The same prompt on both sides."""
    return np.random.default_rng(length).integers(0, vocab_size, length).tolist()


# --------------------------------------------------------------------- one side, served
def serve_minigrad(directory: str, vocab_size: int, block_size: int) -> None:
    """Build the model, export it to `directory`; requests `generate T cache|recompute`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from minigrad import memory
    from transformer.generation import generate
    from transformer.models import GPT, GPTConfig
    from transformer.pretrained import export_gpt2

    memory.keep_freed_memory()  # as the training command does: see minigrad/memory.py
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, **SHAPE), rng=0)
    table = model.token_embedding.weight.data
    table[...] = np.random.default_rng(1).normal(0.0, EMBEDDING_STD, table.shape)
    export_gpt2(model, directory)

    def handle(request: list[str]) -> dict:
        T, use_cache = int(request[1]), request[2] == "cache"
        start = time.perf_counter()
        ids = generate(model, prompt_ids(T // 2, vocab_size), T // 2, temperature=0,
                       use_cache=use_cache)  # fmt: skip
        return {"seconds": time.perf_counter() - start, "ids": ids}

    answer({"version": f"numpy {np.__version__}"}, handle)


def serve_hugging_face(directory: str, vocab_size: int, threads: int) -> None:
    """Load the exported model; requests `generate T cache|recompute`."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # quiet: stdout is the channel
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    import transformers
    from transformers import GPT2LMHeadModel

    torch.set_num_threads(threads)
    model = GPT2LMHeadModel.from_pretrained(directory, dtype=torch.float32).eval()

    def handle(request: list[str]) -> dict:
        T, use_cache = int(request[1]), request[2] == "cache"
        prompt = torch.tensor([prompt_ids(T // 2, vocab_size)])
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                 max_new_tokens=T // 2, min_new_tokens=T // 2, do_sample=False,
                                 use_cache=use_cache, pad_token_id=0)  # fmt: skip
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "ids": out[0, prompt.shape[1] :].tolist()}

    version = f"torch {torch.__version__}, transformers {transformers.__version__} " \
              f"({torch.get_num_threads()} threads)"  # fmt: skip
    answer({"version": version}, handle)


# --------------------------------------------------------------------- the coordinator
def measure(T: int, sides: dict, rounds: int) -> str:
    runs = {("minigrad", "cache"): [], ("minigrad", "recompute"): [], ("hf", "cache"): []}
    runs = {key: run for key, run in runs.items() if key[0] in sides}
    ids = {}
    for _ in range(rounds):
        for side, mode in runs:
            reply = sides[side].ask(f"generate {T} {mode}")
            runs[side, mode].append(reply["seconds"])
            ids[side, mode] = reply["ids"]
    speed = {key: (T // 2) / min(seconds) for key, seconds in runs.items()}
    cache, recompute = speed["minigrad", "cache"], speed["minigrad", "recompute"]
    text = (f"context {T:>4} (prompt {T // 2} + {T // 2} new)  minigrad: cache {cache:6.1f} tok/s, "
            f"recompute {recompute:6.1f} tok/s (cache {cache / recompute:.1f}x)")  # fmt: skip
    if "hf" in sides:
        theirs = speed["hf", "cache"]
        reference = ids["hf", "cache"]
        same = [sum(a == b for a, b in zip(ids[key], reference)) for key in ids if key[0] != "hf"]
        text += (f" | HF generate (cache) {theirs:6.1f} tok/s, ratio {cache / theirs:.2f}x"
                 f" | ids identical: {min(same)}/{len(reference)}")  # fmt: skip
    return text + f" | load {load_average()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", help="an interpreter with torch and transformers")
    parser.add_argument("--contexts", type=int, nargs="+", default=[64, 256],
                        help="contexts T: a prompt of T/2 tokens, then T/2 new ones")  # fmt: skip
    parser.add_argument("--vocab-size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for both sides (default: the machine's cores)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="turns taken by each side")
    parser.add_argument("--serve", choices=("minigrad", "hf"), help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    parser.add_argument("--block-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if any(T < 2 or T % 2 for T in args.contexts):
        parser.error(f"--contexts must be even numbers of at least 2, got {args.contexts}")
    if args.threads < 1 or args.rounds < 1 or args.vocab_size < 2:
        parser.error("--threads and --rounds must be at least 1, --vocab-size at least 2")
    if args.serve == "minigrad":
        return serve_minigrad(args.directory, args.vocab_size, args.block_size)
    if args.serve == "hf":
        return serve_hugging_face(args.directory, args.vocab_size, args.threads)
    check_reference(parser, args.reference_python, "torch, transformers")

    block_size = max(args.contexts)
    print(f"# {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"{args.threads} threads per side, load average {load_average()}")  # fmt: skip
    print(f"# GPT n_layer={SHAPE['n_layer']} n_head={SHAPE['n_head']} n_embd={SHAPE['n_embd']} "
          f"vocab {args.vocab_size} block_size {block_size}; greedy, batch 1; tokens/s: "
          f"new tokens / seconds, the best of {args.rounds} rounds")  # fmt: skip
    script = Path(__file__).resolve()
    with tempfile.TemporaryDirectory() as directory:
        common = ["--directory", directory, "--vocab-size", str(args.vocab_size)]
        ours = [*common, "--block-size", str(block_size)]
        sides = {"minigrad": Side(sys.executable, script, "minigrad", ours, args.threads)}
        if args.reference_python:
            sides["hf"] = Side(args.reference_python, script, "hf", common, args.threads)
        try:
            print("# " + ", ".join(f"{k}: {side.info['version']}" for k, side in sides.items()))
            for T in args.contexts:
                print(measure(T, sides, args.rounds), flush=True)
        finally:
            for side in sides.values():
                side.close()


if __name__ == "__main__":
    main()
