"""Execute the course notebooks in fresh kernels and store their outputs (plots included).

    python scripts/run_notebooks.py                 # every notebook in notebooks/
    python scripts/run_notebooks.py 06 07_generation  # those whose names start so

Each notebook runs from the notebooks/ folder (as a reader's kernel would) with the
matplotlib backend that renders inline images; its outputs are written back into the file,
so that the notebook shows its plots where it is published. A failing cell stops that
notebook, names it and the error, and leaves the file as it was. The tests run the
notebooks through `execute` too (tests/notebooks), without storing anything.

The kernel is this interpreter, importing this checkout's packages (the root goes first on
its PYTHONPATH, whatever else is installed), with one BLAS thread unless
OPENBLAS_NUM_THREADS (or OMP_/MKL_NUM_THREADS) says otherwise: the course's matrices are
small, and on a busy two-core machine a second BLAS thread waiting for a core makes a
notebook many times slower, not faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def kernel_environment(environ: dict[str, str]) -> dict[str, str]:
    """The variables a notebook kernel starts with, made from `environ` (see the top)."""
    env = {k: v for k, v in environ.items() if k != "MPLBACKEND"}  # inline plots
    paths = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths])
    # a kernel started as "python" is this interpreter, which has the project's dependencies
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])
    if not any(name in environ for name in BLAS_THREADS):
        env.update(dict.fromkeys(BLAS_THREADS, "1"))
    return env


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """The notebook at `path`, run top to bottom in a fresh kernel, with its outputs.

    `timeout` is the most seconds one cell may take; a failing cell raises
    CellExecutionError naming the cell and the error.
    """
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timestamps of an earlier run
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,  # no timestamps in the file, and
        coalesce_streams=True,  # printed text in one piece: a re-run changes what changed
    )
    client.execute(env=kernel_environment(dict(os.environ)))
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in args.names)]
        if not paths:
            print(f"no notebook in {NOTEBOOKS} starts with {' or '.join(args.names)}",
                  file=sys.stderr)  # fmt: skip
            return 2
    failed = 0
    for path in paths:
        start = time.perf_counter()
        try:
            notebook = execute(path)
        except CellExecutionError as error:
            failed += 1
            reason = str(error).strip().splitlines()[-1]
            print(f"{path.name}: FAILED ({reason}); the file is unchanged", file=sys.stderr)
            continue
        nbformat.write(notebook, path)
        print(f"{path.name}: ran in {time.perf_counter() - start:.1f} s, outputs stored")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
