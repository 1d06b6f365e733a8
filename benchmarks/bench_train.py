"""Training speed and memory: the project's GPT against the same GPT in PyTorch eager.

    python benchmarks/bench_train.py --reference-python /path/to/venv-with-torch/bin/python
    python benchmarks/bench_train.py --threads 1 --shapes classic

Each shape trains with float32 full steps (forward, cross-entropy, backward, gradient
clipping to norm 1, AdamW with decay on the matrices), on random token ids:

  classic  n_layer=4, n_head=4, n_embd=128, block_size=64, batch 12, vocab 96 (the CPU toy)
  larger   n_layer=6, n_head=6, n_embd=384, block_size=256, batch 8, vocab 96

Both sides start from the same weights (drawn here with NumPy, GPT-2's initialization) and
see the same batches, so their first losses agree. Each side runs in a fresh subprocess per
shape: the project's in this interpreter, PyTorch's (benchmarks/torch_gpt.py) in a
subprocess of `--reference-python`. They take turns round by round, so background load hits
both alike; a side's time per step is the best round's median.

`--threads N` gives both sides N threads: torch.set_num_threads(N) and OMP/MKL_NUM_THREADS
for PyTorch, OPENBLAS_NUM_THREADS for NumPy's matrix products (NumPy's elementwise passes
always use one core). The default is the machine's core count.

Printed per shape, on one line: tokens/s of each side and the ratio (above 1: the project is
faster); the achieved GFLOP/s, counting the matrix products only (per token
3 (n_layer (24 C^2 + 4 T C) + 2 C V)), beside the "matmul floor": the same products as plain
NumPy float32 `@` calls (the step's shapes and layouts, no autograd), in this process's
thread setting; memory as the growth of resident memory during training (the peak RSS over
the training steps minus the RSS before the first step: activations, gradients, optimizer
state, temporaries) and the process's peak RSS (interpreter, libraries and model included).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from side_by_side import Side, answer, check_reference, load_average

SHAPES = {
    "classic": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "batch_size": 12,
                "vocab_size": 96, "steps": 20},
    "larger": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "batch_size": 8,
               "vocab_size": 96, "steps": 3},
}  # fmt: skip
LEARNING_RATE, WEIGHT_DECAY, BETAS, GRAD_CLIP = 3e-4, 0.1, (0.9, 0.95), 1.0
HERE = Path(__file__).resolve().parent  # side_by_side.py and torch_gpt.py live here


# --------------------------------------------------------------------- shared by both sides
def matmul_flops_per_token(s: dict) -> int:
    """Forward + backward (3x the forward) FLOPs of the matrix products, per token."""
    C, T, V = s["n_embd"], s["block_size"], s["vocab_size"]
    return 3 * (s["n_layer"] * (24 * C * C + 4 * T * C) + 2 * C * V)


def initial_state(s: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """GPT-2's initialization under the project's state-dict names: matrices N(0, 0.02),
    the two projections into the residual stream N(0, 0.02 / sqrt(2 n_layer)), biases 0,
    layer-norm gains 1."""
    rng = np.random.default_rng(seed)
    C, L = s["n_embd"], s["n_layer"]

    def normal(*shape: int, std: float = 0.02) -> np.ndarray:
        return rng.normal(0.0, std, shape).astype(np.float32)

    state = {"token_embedding.weight": normal(s["vocab_size"], C),
             "position.weight": normal(s["block_size"], C)}  # fmt: skip
    for i in range(L):
        p = f"blocks.{i}."
        for norm in ("ln_self_attn", "ln_ffn"):
            state[p + norm + ".weight"] = np.ones(C, np.float32)
            state[p + norm + ".bias"] = np.zeros(C, np.float32)
        for name, (n_out, n_in) in (("self_attn.qkv", (3 * C, C)), ("self_attn.out", (C, C)),
                                    ("ffn.up", (4 * C, C)), ("ffn.down", (C, 4 * C))):  # fmt: skip
            residual = name in ("self_attn.out", "ffn.down")  # writes into the residual stream
            std = 0.02 / math.sqrt(2 * L) if residual else 0.02
            state[p + name + ".weight"] = normal(n_out, n_in, std=std)
            state[p + name + ".bias"] = np.zeros(n_out, np.float32)
    state["ln_final.weight"] = np.ones(C, np.float32)
    state["ln_final.bias"] = np.zeros(C, np.float32)
    return state


def batches(s: dict, seed: int = 1):
    """Endless (ids, targets) pairs (B, T) of random token ids, the same on both sides."""
    rng = np.random.default_rng(seed)
    while True:
        ids = rng.integers(0, s["vocab_size"], (s["batch_size"], s["block_size"] + 1))
        yield ids[:, :-1], ids[:, 1:]


def memory_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process in kB, from /proc (Linux); {} elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
    except OSError:
        return {}
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM") if key in fields}


def reset_peak_memory(pid: int | str = "self") -> bool:
    """Restart VmHWM from the current RSS (Linux >= 4.0), so the peak is the training's."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------- one side, served
def minigrad_step(s: dict, state: dict, processes: int):
    """The project's training step, and the pids of its data-parallel workers (forked
    here, before the step is first taken, so that their memory is measured from the start)."""
    sys.path.insert(0, str(HERE.parent))
    from minigrad import memory, optim
    from transformer.models import GPT, GPTConfig
    from transformer.parallel import DataParallel
    from transformer.train import parameter_groups

    memory.keep_freed_memory()  # as the training command does: see minigrad/memory.py
    config = GPTConfig(**{k: s[k] for k in ("vocab_size", "block_size", "n_layer", "n_head",
                                            "n_embd")})  # fmt: skip
    model = GPT(config, rng=0)
    model.load_state_dict(state)
    optimizer = optim.AdamW(parameter_groups(model, WEIGHT_DECAY), lr=LEARNING_RATE, betas=BETAS)
    parallel = None
    if processes > 1:  # as the training command does on a machine of `processes` cores
        parallel = DataParallel(model, lambda model, rows: model(*rows)[1], processes)
        parallel.start()

    def step(ids: np.ndarray, targets: np.ndarray) -> float:
        optimizer.zero_grad()
        if parallel is not None:
            loss = parallel.loss_and_grad((ids, targets))
        else:
            _, loss_tensor = model(ids, targets)
            loss_tensor.backward()
            loss = loss_tensor.item()
        optim.clip_grad_norm(model.parameters(), GRAD_CLIP)
        optimizer.step()
        return loss

    workers = [process.pid for process, *_ in parallel.workers] if parallel else []
    mode = f"{processes} processes x 1 BLAS thread" if parallel else "1 process"
    return step, f"numpy {np.__version__} ({mode})", workers


def torch_step(s: dict, state: dict, threads: int):
    import torch
    from torch_gpt import TorchGPT

    torch.set_num_threads(threads)
    model = TorchGPT(s["vocab_size"], s["block_size"], s["n_layer"], s["n_head"], s["n_embd"])
    model.load_project_weights(state)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=LEARNING_RATE, betas=BETAS)

    def step(ids: np.ndarray, targets: np.ndarray) -> float:
        loss = model(torch.from_numpy(ids), torch.from_numpy(targets))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()
        return loss.item()

    return step, f"torch {torch.__version__} ({torch.get_num_threads()} threads)", []


def matmul_floor_seconds(s: dict, repeats: int = 5) -> float:
    """Seconds of one step's matrix products as plain NumPy float32 `@` calls: per layer the
    four projections (forward x W^T, backward g W and g^T x), the attention's batched
    q k^T and p v with their four backward products, and the tied head."""
    rng = np.random.default_rng(0)
    B, T, C, V, H = (s[k] for k in ("batch_size", "block_size", "n_embd", "vocab_size", "n_head"))
    N, d = B * T, C // H

    def a(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    def best(f) -> float:
        f()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            f()
            times.append(time.perf_counter() - start)
        return min(times)

    def linear(n_in: int, n_out: int) -> float:
        x, w, g = a(N, n_in), a(n_out, n_in), a(N, n_out)
        return best(lambda: x @ w.T) + best(lambda: g @ w) + best(lambda: g.T @ x)

    q, k, p = a(B * H, T, d), a(B * H, T, d), a(B * H, T, T)
    attention = (2 * best(lambda: q @ k.swapaxes(-1, -2)) + best(lambda: p @ k)
                 + best(lambda: p.swapaxes(-1, -2) @ q) + 2 * best(lambda: p @ q))  # fmt: skip
    layer = linear(C, 3 * C) + linear(C, C) + linear(C, 4 * C) + linear(4 * C, C) + attention
    return s["n_layer"] * layer + linear(C, V)


def serve(side: str, shape: str, threads: int, processes: int) -> None:
    """Requests: `steps N` -> the seconds of N training steps; `memory`; `floor`."""
    s = SHAPES[shape]
    state = initial_state(s)
    if side == "torch":
        step, version, workers = torch_step(s, state, threads)
    else:
        step, version, workers = minigrad_step(s, state, processes)
    data = batches(s)
    setup_peak = memory_kb().get("VmHWM", 0)
    pids = ["self", *workers]  # the memory of a data-parallel run is that of every process
    rss_before = sum(memory_kb(pid).get("VmRSS", 0) for pid in pids)
    reset = all([reset_peak_memory(pid) for pid in pids])
    first_loss = step(*next(data))

    def handle(request: list[str]) -> dict:
        if request[0] == "steps":
            seconds = []
            for _ in range(int(request[1])):
                ids, targets = next(data)
                start = time.perf_counter()
                step(ids, targets)
                seconds.append(time.perf_counter() - start)
            return {"seconds": seconds}
        if request[0] == "memory":
            peaks = [memory_kb(pid).get("VmHWM", 0) for pid in pids]
            return {"growth_kb": sum(peaks) - rss_before if reset else None,
                    "peak_kb": max(peaks[0], setup_peak) + sum(peaks[1:])}  # fmt: skip
        return {"seconds": matmul_floor_seconds(s)}

    answer({"version": version, "loss": first_loss}, handle)


# --------------------------------------------------------------------- the coordinator
def measure_shape(shape: str, args: argparse.Namespace) -> str:
    s = SHAPES[shape]
    steps = args.steps or s["steps"]
    tokens = s["batch_size"] * s["block_size"]
    script, shape_args = Path(__file__).resolve(), ["--shapes", shape]
    processes = ["--processes", str(args.processes)]
    sides = {"minigrad": Side(sys.executable, script, "minigrad", shape_args + processes,
                              args.threads)}  # fmt: skip
    if args.reference_python:
        sides["torch"] = Side(args.reference_python, script, "torch", shape_args, args.threads)
    best = {}
    try:
        for side in sides.values():
            side.ask(f"steps {min(steps, 2)}")  # warm-up: the optimizer's state is allocated
        rounds: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name in reversed(sides):  # the reference first, then the project
                seconds = sorted(sides[name].ask(f"steps {steps}")["seconds"])
                rounds[name].append(seconds[len(seconds) // 2])
        best = {name: min(times) for name, times in rounds.items()}
        memory = {name: side.ask("memory") for name, side in sides.items()}
        floor = sides["minigrad"].ask("floor")["seconds"]
        losses = {name: side.info["loss"] for name, side in sides.items()}
    finally:
        for side in sides.values():
            side.close()

    flops = matmul_flops_per_token(s) * tokens
    ours = best["minigrad"]
    mb = {n: {k: (v / 1024 if v is not None else None) for k, v in m.items()}
          for n, m in memory.items()}  # fmt: skip
    text = f"{shape:<8} minigrad {tokens / ours:>7.0f} tok/s ({ours * 1e3:.1f} ms/step)"
    if "torch" in best:
        theirs = best["torch"]
        text += f", torch {tokens / theirs:>7.0f} tok/s ({theirs * 1e3:.1f} ms), " \
                f"ratio {theirs / ours:.2f}x"  # fmt: skip
    text += f" | GFLOP/s {flops / ours / 1e9:.0f}"
    if "torch" in best:
        text += f" / {flops / best['torch'] / 1e9:.0f}"
    text += f", matmul floor {flops / floor / 1e9:.0f} (minigrad at {floor / ours:.0%})"
    growth = mb["minigrad"]["growth_kb"]
    if growth is not None:
        text += f" | RSS growth {growth:.0f}"
        if "torch" in mb and mb["torch"]["growth_kb"]:
            text += f" / {mb['torch']['growth_kb']:.0f} MB " \
                    f"({growth / mb['torch']['growth_kb']:.2f}x)"  # fmt: skip
        else:
            text += " MB"
    text += f", peak RSS {mb['minigrad']['peak_kb']:.0f}"
    text += f" / {mb['torch']['peak_kb']:.0f} MB" if "torch" in mb else " MB"
    text += f" | first loss {' / '.join(f'{v:.5f}' for v in losses.values())}"
    text += f" | load {load_average()}"
    return text, {name: side.info["version"] for name, side in sides.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", help="an interpreter with torch installed")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), help=f"of {list(SHAPES)}")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for both sides (default: the machine's cores)")  # fmt: skip
    parser.add_argument("--processes", type=int,
                        help="the project's processes sharing each batch, one BLAS thread "
                        "each (default: --threads; 1: one process, --threads threads)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="turns taken by each side")
    parser.add_argument("--steps", type=int, default=0,
                        help="steps per round (default: 20 classic, 3 larger)")  # fmt: skip
    parser.add_argument("--serve", choices=("minigrad", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape {unknown[0]!r}; choose from {list(SHAPES)}")
    args.processes = args.threads if args.processes is None else args.processes
    if min(args.threads, args.rounds, args.processes) < 1 or args.steps < 0:
        parser.error("--threads, --processes and --rounds must be at least 1, --steps at least 0")
    if args.serve:
        serve(args.serve, args.shapes[0], args.threads, args.processes)
        return
    check_reference(parser, args.reference_python, "torch")
    print(f"# {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"{args.threads} threads per side, load average {load_average()}")  # fmt: skip
    print(f"# tokens/s: the best of {args.rounds} rounds, each the median step; "
          "ratio = minigrad tok/s / torch tok/s")  # fmt: skip
    for shape in args.shapes:
        line, versions = measure_shape(shape, args)
        if shape == args.shapes[0]:
            print("# " + ", ".join(f"{k}: {v}" for k, v in versions.items()))
        print(line, flush=True)


if __name__ == "__main__":
    main()
