"""Importing minigrad leaves malloc alone; keep_freed_memory() is the opt-in (glibc Linux)."""

import platform
import subprocess
import sys

import pytest

GLIBC_LINUX = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def run(code: str) -> str:
    """What `code` prints in a fresh interpreter: a process of its own, so malloc is untouched."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_minigrad_does_not_tune_malloc(monkeypatch):
    monkeypatch.delenv("MINIGRAD_KEEP_FREED_MEMORY", raising=False)
    assert run("import minigrad, minigrad.memory as m; print(m.applied)") == "False"


@pytest.mark.parametrize("setting, expected", [(None, "True True"), ("0", "False False")])
def test_keep_freed_memory_applies_on_request_unless_the_environment_says_no(
    setting, expected, monkeypatch
):
    if setting is None:
        monkeypatch.delenv("MINIGRAD_KEEP_FREED_MEMORY", raising=False)
    else:
        monkeypatch.setenv("MINIGRAD_KEEP_FREED_MEMORY", setting)
    code = "import minigrad as mg; print(mg.memory.keep_freed_memory(), mg.memory.applied)"
    assert run(code) == (expected if GLIBC_LINUX else "False False")
