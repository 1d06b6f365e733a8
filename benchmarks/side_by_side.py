"""The two sides of a benchmark, each a server process, taking turns on request.

`bench_train.py` and `bench_generate.py` run the project in one process and the reference
library (PyTorch, Hugging Face transformers) in another, started from the reference's own
interpreter so that the project never imports it. Each process is the benchmark script
itself with `--serve NAME`: it prints one JSON line of facts, then answers one JSON line per
request line on stdin. The coordinator asks the two in turn, round by round, so background
load hits both alike. Only the standard library is imported here: the reference
interpreter imports this module too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class Side:
    """`python script --serve name *args` with every BLAS and OpenMP thread count set to
    `threads`, run from `/` so that no project package shadows the reference's own (the
    project's `tokenizers` would hide Hugging Face's)."""

    def __init__(self, python: str, script: Path, name: str, args: list[str], threads: int):
        env = dict(os.environ, **{variable: str(threads) for variable in THREAD_VARIABLES})
        self.python, self.name = python, name
        command = [python, str(script), "--serve", name, "--threads", str(threads), *args]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd="/"
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} side ({self.python}) failed; see its error above")
        return json.loads(line)

    def ask(self, request: str) -> dict:
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def answer(facts: dict, handle) -> None:
    """The server's side: print `facts`, then `handle(request words)` for each line of stdin,
    printing each answer (a dict) as one JSON line."""
    print(json.dumps(facts), flush=True)
    import sys

    for line in sys.stdin:
        print(json.dumps(handle(line.split())), flush=True)


def load_average() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def check_reference(parser, python: str | None, modules: str) -> None:
    """A parser error unless `python` is an executable that imports `modules` ('torch')."""
    if python is None:
        return
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        parser.error(f"--reference-python {python!r} is not an executable file")
    probe = subprocess.run([python, "-c", f"import {modules}"], capture_output=True, cwd="/")
    if probe.returncode:
        parser.error(f"--reference-python {python!r} cannot import {modules}")
