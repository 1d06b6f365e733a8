"""How much does the engine itself cost? minigrad against PyTorch eager on three workloads.

    python benchmarks/bench_engine.py
    python benchmarks/bench_engine.py --reference-python /work/refenv/bin/python

Workloads (float32, forward + backward, fresh graph every iteration):

  small_graph   (a @ b + c).sum() with a, b (16, 16), c (16,): four nodes, so the time is
                almost all bookkeeping (making nodes, walking the graph, accumulating grads).
  mlp_step      784 -> 256 -> 256 -> 10 MLP with ReLU, batch 64: forward, cross-entropy,
                backward, AdamW step, zero_grad.
  pipeline      x (12, 64, 512) -> layer_norm(w, b) -> gelu (tanh) -> h;
                loss = cross_entropy(h, targets) + sum(softmax(h) * c); backward to x, w, b.
  pipeline_erf  the same with the exact (erf) GELU.

minigrad runs in this interpreter. PyTorch, when a reference interpreter is given (or torch
is importable here), runs the identical workloads (same shapes, same seeds, inputs made by
the same NumPy code) in a subprocess, so the project never imports torch. Each line shows
the median time per iteration over several repeats (timeit-style inner loops after a
warm-up), the torch time, and the ratio minigrad / torch (lower is better for minigrad).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------- shared definitions
# The inputs are made from fixed seeds by these functions, and the same functions (their
# source, sent along with the torch script) make them on the torch side, so both
# frameworks see the same numbers.
SHAPES = {"small": 16, "mlp": (64, (784, 256, 256, 10)), "pipeline": (12, 64, 512)}


def small_inputs():
    rng = np.random.default_rng(0)
    n = SHAPES["small"]
    return [rng.standard_normal(s).astype(np.float32) for s in ((n, n), (n, n), (n,))]


def mlp_inputs():
    rng = np.random.default_rng(1)
    batch, sizes = SHAPES["mlp"]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        layers.append((w, b))
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return layers, x, y


def pipeline_inputs():
    rng = np.random.default_rng(2)
    shape = SHAPES["pipeline"]
    x = rng.standard_normal(shape).astype(np.float32)
    w = (1 + 0.1 * rng.standard_normal(shape[-1])).astype(np.float32)
    b = (0.1 * rng.standard_normal(shape[-1])).astype(np.float32)
    c = rng.standard_normal(shape).astype(np.float32)
    targets = rng.integers(0, shape[-1], shape[:-1])
    return x, w, b, c, targets


def measure(step, min_time=0.2, repeats=7, warmup=3):
    """Median seconds per call of `step()`: after `warmup` calls, pick an inner loop count
    that takes >= min_time, then time `repeats` such loops and take the median."""
    import time

    for _ in range(warmup):
        step()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            step()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        number *= 2 if elapsed * 2 >= min_time else 10
    times = [elapsed / number]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(number):
            step()
        times.append((time.perf_counter() - start) / number)
    times.sort()
    return times[len(times) // 2]


SHARED = "import numpy as np\n\n" + "\n\n".join(
    [f"SHAPES = {SHAPES!r}"]
    + [inspect.getsource(f) for f in (small_inputs, mlp_inputs, pipeline_inputs, measure)]
)

# --------------------------------------------------------------------- the torch side
TORCH_SCRIPT = (
    SHARED
    + """
import json
import sys

import torch
import torch.nn.functional as F

opts = json.loads(sys.argv[1])
torch.manual_seed(0)
if opts["threads"]:
    torch.set_num_threads(opts["threads"])


def small_graph():
    a, b, c = (torch.tensor(v, requires_grad=True) for v in small_inputs())

    def step():
        a.grad = b.grad = c.grad = None
        loss = (a @ b + c).sum()
        loss.backward()
        return loss

    return step


def mlp_step():
    layers, x, y = mlp_inputs()
    params = [torch.tensor(v, requires_grad=True) for wb in layers for v in wb]
    x, y = torch.tensor(x), torch.tensor(y)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, foreach=opts["foreach"])

    def step():
        h = x
        for i in range(0, len(params), 2):
            h = F.linear(h, params[i], params[i + 1])
            if i + 2 < len(params):
                h = F.relu(h)
        loss = F.cross_entropy(h, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    return step


def pipeline(approximate):
    def make():
        x, w, b, c, targets = (torch.tensor(v) for v in pipeline_inputs())
        for t in (x, w, b):
            t.requires_grad_(True)

        def step():
            x.grad = w.grad = b.grad = None
            h = F.gelu(F.layer_norm(x, x.shape[-1:], w, b), approximate=approximate)
            loss = F.cross_entropy(h.reshape(-1, h.shape[-1]), targets.reshape(-1))
            loss = loss + (F.softmax(h, dim=-1) * c).sum()
            loss.backward()
            return loss

        return step

    return make


WORKLOADS = {"small_graph": small_graph, "mlp_step": mlp_step,
             "pipeline": pipeline("tanh"), "pipeline_erf": pipeline("none")}
# a small server: one request per line on stdin ("name"), one JSON answer per line on stdout
steps = {}
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    name = line.strip()
    if name not in steps:
        steps[name] = WORKLOADS[name]()
        loss = steps[name]().item()
    else:
        loss = None
    seconds = measure(steps[name], opts["min_time"], opts["repeats"])
    print(json.dumps({"seconds": seconds, "loss": loss}), flush=True)
"""
)


class TorchReference:
    """The torch workloads in a subprocess of `python`, measured one request at a time, so
    the two frameworks can take turns (background load then hits both alike)."""

    def __init__(self, python: str, args: argparse.Namespace) -> None:
        opts = {"threads": args.threads, "min_time": args.min_time, "repeats": args.repeats,
                "foreach": args.torch_foreach}  # fmt: skip
        self.python = python
        self.process = subprocess.Popen(
            [python, "-c", TORCH_SCRIPT, json.dumps(opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd="/",  # so that no project package shadows torch's dependencies
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the torch reference ({self.python}) failed; see its error above")
        return json.loads(line)

    def measure(self, name: str) -> dict:
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


# --------------------------------------------------------------------- the minigrad side
def minigrad_workloads() -> dict:
    from minigrad import Tensor, optim
    from minigrad import functional as F

    def small_graph():
        a, b, c = (Tensor(v, requires_grad=True) for v in small_inputs())

        def step():
            a.grad = b.grad = c.grad = None
            loss = (a @ b + c).sum()
            loss.backward()
            return loss

        return step

    def mlp_step():
        layers, x, y = mlp_inputs()
        params = [Tensor(v, requires_grad=True) for wb in layers for v in wb]
        x = Tensor(x)
        opt = optim.AdamW(params, lr=1e-3, weight_decay=0.01)

        def step():
            h = x
            for i in range(0, len(params), 2):
                h = F.linear(h, params[i], params[i + 1])
                if i + 2 < len(params):
                    h = F.relu(h)
            loss = F.cross_entropy(h, y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        return step

    def pipeline(approximate):
        def make():
            x, w, b, c, targets = pipeline_inputs()
            x, w, b = (Tensor(v, requires_grad=True) for v in (x, w, b))

            def step():
                x.grad = w.grad = b.grad = None
                h = F.gelu(F.layer_norm(x, w, b), approximate=approximate)
                loss = F.cross_entropy(h, targets) + (F.softmax(h, axis=-1) * c).sum()
                loss.backward()
                return loss

            return step

        return make

    return {"small_graph": small_graph, "mlp_step": mlp_step,
            "pipeline": pipeline("tanh"), "pipeline_erf": pipeline("none")}  # fmt: skip


def torch_python(args: argparse.Namespace) -> str | None:
    """The interpreter to run torch with: --reference-python, else this one if it has torch."""
    if args.no_torch:
        return None
    if args.reference_python:
        return args.reference_python
    probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, cwd="/")
    return sys.executable if probe.returncode == 0 else None


def thread_round_trip_seconds(trips: int = 200) -> float:
    """Seconds for one hand-off to another Python thread and back (two Event wake-ups).

    NumPy runs each elementwise pass on one core; splitting a pass's rows over two threads
    pays only where a wake-up is short next to the pass (about 40-250 us on (12, 64, 512)
    float32). On a virtual machine whose idle cores halt, a wake-up can cost more than that.
    """
    import threading

    ping, pong = threading.Event(), threading.Event()

    def partner() -> None:
        for _ in range(trips):
            ping.wait()
            ping.clear()
            pong.set()

    thread = threading.Thread(target=partner)
    thread.start()
    start = time.perf_counter()
    for _ in range(trips):
        ping.set()
        pong.wait()
        pong.clear()
    elapsed = time.perf_counter() - start
    thread.join()
    return elapsed / trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", help="an interpreter with torch installed")
    parser.add_argument("--no-torch", action="store_true", help="minigrad figures only")
    parser.add_argument("--workloads", nargs="+", default=None, help="a subset to run")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads(N) for the reference (0: torch's default); "
                             "NumPy's BLAS threads follow OPENBLAS_NUM_THREADS")  # fmt: skip
    parser.add_argument("--torch-foreach", action="store_true",
                        help="let torch's AdamW use its multi-tensor (foreach) step")  # fmt: skip
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per round")
    parser.add_argument("--rounds", type=int, default=3, help="turns taken by each framework")
    args = parser.parse_args()

    from minigrad import memory

    kept = memory.keep_freed_memory()  # as a training run would: see minigrad/memory.py
    workloads = minigrad_workloads()
    names = args.workloads or list(workloads)
    unknown = set(names) - set(workloads)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {list(workloads)}")

    python = torch_python(args)
    reference = TorchReference(python, args) if python else None
    speed_env = ("OPENBLAS", "OMP_", "MALLOC_")  # variables that change the figures
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(speed_env)}
    print(f"# python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} cpus, env {blas_env or '{}'}, "
          f"thread round trip {_fmt(thread_round_trip_seconds())}")  # fmt: skip
    why_not = "not applied (glibc Linux only; MINIGRAD_KEEP_FREED_MEMORY=0 turns it off)"
    print(f"# malloc: minigrad.memory.keep_freed_memory() {'applied' if kept else why_not}")
    if reference:
        print(
            f"# torch {reference.info['torch']} ({reference.info['threads']} threads) via {python}"
        )
    else:
        print("# torch: not available (pass --reference-python PATH for the ratio)")
    print(f"# time per iteration: the best of {args.rounds} rounds, each the median of "
          f"{args.repeats} repeats; the frameworks take turns round by round")  # fmt: skip
    print(f"{'workload':<14} {'minigrad':>12} {'torch':>12} {'ratio':>7}   loss (minigrad / torch)")
    try:
        for name in names:
            step = workloads[name]()
            loss = float(step().item())
            mine, theirs, their_loss = [], [], None
            for _ in range(args.rounds):
                if reference:
                    answer = reference.measure(name)
                    theirs.append(answer["seconds"])
                    their_loss = answer["loss"] if their_loss is None else their_loss
                mine.append(measure(step, args.min_time, args.repeats))
            if reference:
                ratio = min(mine) / min(theirs)
                print(f"{name:<14} {_fmt(min(mine)):>12} {_fmt(min(theirs)):>12} {ratio:>6.2f}x   "
                      f"{loss:.6g} / {their_loss:.6g}")  # fmt: skip
            else:
                print(f"{name:<14} {_fmt(min(mine)):>12} {'-':>12} {'-':>7}   {loss:.6g}")
    finally:
        if reference:
            reference.close()


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    start = time.perf_counter()
    main()
    print(f"# total {time.perf_counter() - start:.0f} s")
