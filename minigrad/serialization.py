"""Save and load weights as safetensors, with a JSON config in the file's metadata.

safetensors is a JSON header (names, dtypes, shapes, offsets) followed by raw bytes: it
loads without executing anything, unlike pickle. Files are written atomically: to a
temporary file beside the target, flushed to disk, then renamed over it, so a crash
leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as safetensors_save

from minigrad.nn import Module


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` so that readers see the old file or the new one, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(
    weights: Module | dict[str, np.ndarray],
    path: str | os.PathLike,
    config: dict[str, Any] | None = None,
) -> None:
    """Write a module's state dict (or a dict of arrays) and an optional JSON-able config."""
    state = weights.state_dict() if isinstance(weights, Module) else weights
    arrays = {name: np.ascontiguousarray(value) for name, value in state.items()}
    metadata = {"format": "np", "config": json.dumps(config if config is not None else {})}
    atomic_write_bytes(path, safetensors_save(arrays, metadata=metadata))


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
    return state, config
