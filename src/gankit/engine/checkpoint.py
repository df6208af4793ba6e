"""Training state (`state.pt`) and the run's model directory.

`state.pt` holds only tensors, numbers and strings, so it is read with
`torch.load(weights_only=True)`; it is written atomically, so a kill at any moment leaves the
previous complete checkpoint in place.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from gankit.errors import CheckpointError
from gankit.modeldir import atomic_write_bytes

STATE_FILE = "state.pt"


def save_state(run_dir: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write `state.pt` atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(run_dir) / STATE_FILE
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_state(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read `state.pt` with `weights_only=True` (no arbitrary unpickling)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; this run has no checkpoint to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupted or unsafe files
        raise CheckpointError(f"{path}: unreadable or unsafe training state ({exc})") from exc


def clean_temp_files(run_dir: str | os.PathLike) -> list[Path]:
    """Remove temp files a killed atomic write left behind (`.NAME.*.tmp`); returns them."""
    removed = []
    for path in Path(run_dir).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
