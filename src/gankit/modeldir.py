"""The model directory: `model.safetensors` + `model.json`, written atomically, read without pickle.

Every trained gankit model (image generator, tabular synthesizer, imputer) is saved this way so
one loader, one integrity check and one server can handle all of them. `model.json` carries the
SHA-256 of the weights file; reading refuses a file whose hash does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gankit.errors import CheckpointError

FORMAT = "gankit-model/1"
WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "model.json"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _umask_mode() -> int:
    """The mode a plain `open()` would give a new file (mkstemp alone gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (pretty-printed, UTF-8)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Save tensors as safetensors atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model_dir(
    directory: str | os.PathLike, tensors: dict[str, torch.Tensor], spec: dict[str, Any]
) -> Path:
    """Save weights and spec; the spec gains `format` and `weights_sha256`.

    The weights are written first and the spec last, so a spec on disk always names weights
    that are complete.
    """
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    atomic_save_tensors(weights, tensors)
    full_spec = {**spec, "format": FORMAT, "weights_sha256": sha256_file(weights)}
    atomic_write_json(directory / SPEC_FILE, full_spec)
    return directory


def read_spec(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check `model.json` of a model directory."""
    directory = Path(directory)
    spec_path = directory / SPEC_FILE
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    if not spec_path.is_file():
        raise CheckpointError(f"{spec_path}: missing; is {directory} a gankit model directory?")
    try:
        spec = json.loads(spec_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{spec_path}: not valid JSON ({exc})") from exc
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
        raise CheckpointError(f"{spec_path}: format is {found!r}, expected {FORMAT!r}")
    if not isinstance(spec.get("weights_sha256"), str):
        raise CheckpointError(f"{spec_path}: 'weights_sha256' is missing")
    return spec


def verify_model_dir(directory: str | os.PathLike) -> dict[str, Any]:
    """Return the spec if the weights match their recorded SHA-256, else raise CheckpointError."""
    spec = read_spec(directory)
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    actual = sha256_file(weights)
    if actual != spec["weights_sha256"]:
        raise CheckpointError(
            f"{weights}: SHA-256 {actual[:16]}… does not match model.json "
            f"({spec['weights_sha256'][:16]}…); the file was modified or corrupted"
        )
    return spec


def read_model_dir(
    directory: str | os.PathLike, kinds: tuple[str, ...] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load (tensors, spec) after checking the hash (and the kind, if `kinds` is given).

    Never unpickles.
    """
    spec = verify_model_dir(directory)
    if kinds is not None and spec.get("kind") not in kinds:
        raise CheckpointError(
            f"{directory}: model kind is {spec.get('kind')!r}, expected {' or '.join(kinds)}"
        )
    weights = Path(directory) / WEIGHTS_FILE
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: unreadable safetensors file ({exc})") from exc
    return tensors, spec
