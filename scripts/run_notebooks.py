"""Execute the course notebooks in fresh kernels and store their outputs (plots included).

    python scripts/run_notebooks.py                 # every notebook in notebooks/
    python scripts/run_notebooks.py 06 07_generation  # those whose names start so

Each notebook runs from the notebooks/ folder (as a reader's kernel would) with the
matplotlib backend that renders inline images, importing this checkout's packages (its root
goes first on the kernel's PYTHONPATH, whatever else is installed); its outputs are written
back into the file, so that the notebook shows its plots where it is published. A failing
cell stops that notebook, names it and the error, and leaves the file as it was.
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


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """The notebook at `path`, run top to bottom in a fresh kernel, with its outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
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
    paths_before = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths_before])  # for the kernels
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend stores the plots
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
