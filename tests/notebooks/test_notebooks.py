"""The course notebooks: a numbered sequence, each asserting its claims, stored with its
outputs (plots included), and each running from top to bottom in a fresh kernel."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NAME = re.compile(r"(\d\d)_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb")
ASSERTION = re.compile(r"^\s*assert\b|\bnp\.testing\.assert_\w+\(", re.MULTILINE)
CELL_TIMEOUT = 90  # seconds one cell may take (a hung cell fails instead of blocking the run)
NOTEBOOK_SECONDS = 90  # each notebook is meant to run in about 30 s on two cores, at most a minute


def sequence_problems(directory: Path) -> list[str]:
    """What breaks the numbering 01_name.ipynb, 02_name.ipynb, ... (no gaps, no repeats)."""
    problems, numbers = [], {}
    for path in sorted(directory.glob("*.ipynb")):
        match = NAME.fullmatch(path.name)
        if match is None:
            problems.append(f"{path.name}: not named NN_name.ipynb (two digits, lowercase words)")
            continue
        numbers.setdefault(int(match.group(1)), []).append(path.name)
    for number, names in sorted(numbers.items()):
        if len(names) > 1:
            problems.append(f"number {number:02d} is used by {', '.join(names)}")
    missing = sorted(set(range(1, max(numbers, default=0) + 1)) - set(numbers))
    if missing:
        problems.append(
            f"the sequence has gaps: no notebook {', '.join(f'{n:02d}' for n in missing)}"
        )
    return problems


def content_problems(path: Path) -> list[str]:
    """What a notebook lacks: an assertion, outputs stored from one top-to-bottom run, a plot."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    problems = []
    if not any(ASSERTION.search(cell.source) for cell in code):
        problems.append(f"{path.name}: no assert in any code cell (every claim is asserted)")
    counts = [cell.get("execution_count") for cell in code]
    if None in counts:
        first = counts.index(None)
        problems.append(
            f"{path.name}: code cell {first + 1} of {len(code)} has not run (no execution_count); "
            "store the outputs with scripts/run_notebooks.py"
        )
    elif counts != list(range(1, len(code) + 1)):
        problems.append(
            f"{path.name}: the outputs are not from one run from the top (execution counts "
            f"{counts[:8]}...); store them with scripts/run_notebooks.py"
        )
    outputs = [output for cell in code for output in cell.get("outputs", [])]
    if not any("image/png" in output.get("data", {}) for output in outputs):
        problems.append(f"{path.name}: no plot stored (no image/png output)")
    errors = [output for output in outputs if output.get("output_type") == "error"]
    if errors:
        problems.append(f"{path.name}: a stored error: {errors[0]['ename']}: {errors[0]['evalue']}")
    return problems


def notebook_problems(directory: Path) -> list[str]:
    """Every problem of the notebooks in `directory`: the sequence, then each notebook."""
    problems = sequence_problems(directory)
    for path in sorted(directory.glob("*.ipynb")):
        problems += content_problems(path)
    return problems


def test_notebooks_form_a_sequence_with_assertions_and_stored_outputs():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    problems = notebook_problems(NOTEBOOK_DIR)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the checker on planted notebooks
PNG = "iVBORw0KGgo="  # the start of a PNG; the checker only looks for the output's type


def make_notebook(path: Path, *, asserts=True, ran=True, plot=True, error=False, counts=None):
    """A small notebook as the checker sees one, its outputs written in by hand."""
    cells = [nbformat.v4.new_markdown_cell("# A title")]
    sources = ["x = 1 + 1", "assert x == 2" if asserts else "print(x)", "plot()"]
    counts = counts or [1, 2, 3]
    for source, count in zip(sources, counts):
        cell = nbformat.v4.new_code_cell(source)
        cell.execution_count = count if ran else None
        cells.append(cell)
    if plot:
        cells[-1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG})]
    if error:
        failure = nbformat.v4.new_output("error", ename="NameError", evalue="plot", traceback=[])
        cells[-1].outputs.append(failure)
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbformat.write(notebook, path)


def test_checker_accepts_a_good_sequence(tmp_path):
    for name in ["01_first.ipynb", "02_second_one.ipynb", "03_third.ipynb"]:
        make_notebook(tmp_path / name)
    assert notebook_problems(tmp_path) == []


@pytest.mark.parametrize(
    "names, expected",
    [
        (["01_a.ipynb", "03_c.ipynb"], "gaps: no notebook 02"),
        (["02_b.ipynb"], "gaps: no notebook 01"),
        (["01_a.ipynb", "02_b.ipynb", "02_other.ipynb"], "number 02 is used by"),
        (["01_a.ipynb", "intro.ipynb"], "intro.ipynb: not named NN_name.ipynb"),
        (["1_a.ipynb"], "1_a.ipynb: not named NN_name.ipynb"),
        (["01_Attention.ipynb"], "01_Attention.ipynb: not named NN_name.ipynb"),
    ],
)
def test_checker_rejects_a_broken_sequence(tmp_path, names, expected):
    for name in names:
        make_notebook(tmp_path / name)
    problems = notebook_problems(tmp_path)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"asserts": False}, "no assert in any code cell"),
        ({"ran": False}, "has not run"),
        ({"counts": [1, 3, 2]}, "not from one run from the top"),
        ({"plot": False}, "no plot stored"),
        ({"error": True}, "a stored error: NameError"),
    ],
)
def test_checker_rejects_a_notebook_without_assertions_or_outputs(tmp_path, settings, expected):
    make_notebook(tmp_path / "01_first.ipynb")
    make_notebook(tmp_path / "02_planted.ipynb", **settings)
    problems = notebook_problems(tmp_path)
    assert len(problems) == 1 and "02_planted.ipynb" in problems[0], problems
    assert expected in problems[0]


# ---------------------------------------------------------------- every notebook runs afresh
def load_runner():
    """scripts/run_notebooks.py, whose `execute` stores the outputs: the tests run the same."""
    spec = importlib.util.spec_from_file_location(
        "run_notebooks", ROOT / "scripts" / "run_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runner_fails_on_a_failed_assertion(tmp_path):
    path = tmp_path / "01_planted.ipynb"
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("assert x == 2")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    with pytest.raises(CellExecutionError, match="AssertionError"):
        load_runner().execute(path, timeout=CELL_TIMEOUT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path):
    start = time.perf_counter()
    # raises CellExecutionError, naming the cell, on any error or failed assertion
    notebook = load_runner().execute(path, timeout=CELL_TIMEOUT)
    seconds = time.perf_counter() - start
    assert seconds < NOTEBOOK_SECONDS, f"{path.name} took {seconds:.0f} s to run"
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
