"""minigrad keeps freed memory in the process on glibc Linux, unless told not to."""

import platform
import subprocess
import sys

import pytest

CHECK = "import minigrad.memory as m, minigrad; print(m.applied)"


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False")])
def test_malloc_setting_follows_the_environment(setting, expected, monkeypatch):
    if setting is None:
        monkeypatch.delenv("MINIGRAD_KEEP_FREED_MEMORY", raising=False)
    else:
        monkeypatch.setenv("MINIGRAD_KEEP_FREED_MEMORY", setting)
    glibc_linux = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (expected if glibc_linux else "False")
