"""Save and load weights as safetensors, with a JSON config in the file's metadata.

safetensors is a JSON header (names, dtypes, shapes, offsets) followed by raw bytes: it
loads without executing anything, unlike pickle. Files are written atomically: to a
temporary file beside the target, flushed to disk, then renamed over it (and the rename
flushed too), so a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as safetensors_save

from minigrad.nn import Module
from minigrad.tensor import Tensor

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` so that readers see the old file or the new one, whole.

    The file keeps the mode of the one it replaces; a new file gets the mode a plain
    `open()` would give it (0o666 less the umask, which the OS applies to `os.open`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _create_temporary_file(path: Path) -> tuple[int, Path]:
    """A new file beside `path`, opened for writing; not `mkstemp`, whose mode is 0o600."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666), tmp
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    """Flush the directory entry of the rename, so the new name survives a power cut too.
    Some platforms (Windows) cannot open a directory: there the rename is all we can do."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(
    weights: Module | dict[str, np.ndarray | Tensor],
    path: str | os.PathLike,
    config: dict[str, Any] | None = None,
) -> None:
    """Write a module's state dict (or a dict of arrays or Tensors) and an optional config
    that JSON can represent exactly (no NaN or inf, which standard JSON has no words for)."""
    state = weights.state_dict() if isinstance(weights, Module) else weights
    arrays = {name: _as_saveable_array(name, value) for name, value in state.items()}
    try:
        config_json = json.dumps(config if config is not None else {}, allow_nan=False)
    except ValueError as error:
        raise ValueError(f"the config cannot be saved as standard JSON: {error}") from error
    metadata = {"format": "np", "config": config_json}
    atomic_write_bytes(path, safetensors_save(arrays, metadata=metadata))


SAFETENSORS_DTYPES = frozenset(
    np.dtype(t)
    for t in (np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
              np.uint64, np.int64, np.float16, np.float32, np.float64, np.complex64)
)  # fmt: skip


def _as_saveable_array(name: Any, value: Any) -> np.ndarray:
    """The C-ordered array safetensors stores for `value`, or a TypeError naming the key."""
    if not isinstance(name, str):
        raise TypeError(f"cannot save key {name!r}: safetensors names must be str")
    if isinstance(value, Tensor):
        value = value.data
    if not isinstance(value, np.ndarray):
        raise TypeError(f"cannot save '{name}': a {type(value).__name__}, not an array or Tensor")
    if value.dtype.newbyteorder("=") not in SAFETENSORS_DTYPES:  # big-endian is swapped
        raise TypeError(f"cannot save '{name}': safetensors has no dtype {value.dtype}")
    return np.require(value, requirements="C")  # unlike ascontiguousarray, keeps 0-d shapes


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by `save`: (state dict, config)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    payload = path.read_bytes()
    try:
        state = safetensors_load(payload)
        header_size = int.from_bytes(payload[:8], "little")
        header = json.loads(payload[8 : 8 + header_size])
        config = json.loads(header.get("__metadata__", {}).get("config", "{}"))
    except (SafetensorError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a valid safetensors file: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(
            f"{path}: the config in its metadata should be a JSON object, "
            f"got {type(config).__name__}"
        )
    return state, config
