"""Keep freed memory inside the process, so large NumPy temporaries do not page-fault.

A training step allocates and frees the same large temporaries on every iteration. glibc's
malloc serves blocks over 128 KiB from fresh pages of the operating system and hands them
back when they are freed, so every iteration faults each page in again; on a virtual
machine that can cost more than the arithmetic (a (12, 64, 512) float32 layer-norm + GELU +
cross-entropy step ran 2.9x faster with this setting). Raising malloc's mmap and trim
thresholds keeps freed blocks on the heap, ready for the next step, as PyTorch's caching
allocators do. The process then holds on to its peak memory.

Importing minigrad leaves malloc alone: a program that wants this calls
`minigrad.memory.keep_freed_memory()` and says so (the training command and the benchmarks
do). It works on Linux with glibc; MINIGRAD_KEEP_FREED_MEMORY=0 in the environment turns
the call into a no-op.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

applied = False


def keep_freed_memory() -> bool:
    """Ask glibc to serve blocks up to 32 MiB from the heap and not to return freed memory
    below 1 GiB of free heap to the system. Returns whether the settings were applied."""
    global applied
    if os.environ.get("MINIGRAD_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    applied = bool(
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        and mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        and mallopt(_M_TOP_PAD, 64 << 20)
    )
    return applied
