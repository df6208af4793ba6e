"""The model directory: `model.safetensors` + `model.json`, written atomically, read without pickle.

Every trained gankit model (image generator, tabular synthesizer, imputer) is saved this way so
one loader, one integrity check and one server can handle all of them. `model.json` carries the
SHA-256 of the weights file and the SHA-256 of its own canonical JSON (`spec_sha256`); reading
refuses a directory where either does not match.

The hashes catch corruption and casual edits, not a forger (who can recompute them), so loaders
also check the spec against the weights before allocating anything: `check_module_fits` builds
the network on the meta device and compares its tensor shapes with the safetensors header, so a
spec that asks for a 10^12-wide layer is refused in milliseconds whatever its hashes say.

An encrypted directory (`gankit encrypt`, `gankit.crypto`) is read the same way: its files are
decrypted in memory with the key of `gankit.crypto.current_key`, and the hashes are checked on
the plaintext.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.crypto import is_encrypted_dir
from gankit.errors import CheckpointError

if TYPE_CHECKING:  # torch is imported inside the functions that need it
    import torch
    from torch import nn

FORMAT = "gankit-model/1"
WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "model.json"
SPEC_HASH_KEY = "spec_sha256"


class UnsealedSpecWarning(UserWarning):
    """model.json was written before gankit recorded the SHA-256 of the spec itself."""


def canonical_json(obj: Any) -> bytes:
    """The bytes the spec hash is computed over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def spec_sha256(spec: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of `spec` without its own `spec_sha256` entry.

    The spec goes through one JSON round trip first, so the hash recorded at write time (from
    Python objects: tuples, ints) equals the hash recomputed at read time (from the file).
    """
    plain = json.loads(json.dumps({k: v for k, v in spec.items() if k != SPEC_HASH_KEY}))
    return hashlib.sha256(canonical_json(plain)).hexdigest()


def seal_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with `format` and a fresh `spec_sha256` (its weights hash must already be set)."""
    spec = {**spec, "format": FORMAT}
    spec.pop(SPEC_HASH_KEY, None)
    return {**spec, SPEC_HASH_KEY: spec_sha256(spec)}


def write_spec(directory: str | os.PathLike, spec: dict[str, Any]) -> dict[str, Any]:
    """Write `model.json` (sealed: with its own SHA-256) atomically; returns what was written.

    Every writer of `model.json` goes through here, so an edit that records something new (an
    exported ONNX file, say) keeps the spec hash valid.
    """
    sealed = seal_spec(spec)
    atomic_write_json(Path(directory) / SPEC_FILE, sealed)
    return sealed


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
    from safetensors.torch import save_file

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
    """Save weights and spec; the spec gains `format`, `weights_sha256` and `spec_sha256`.

    The weights are written first and the spec last, so a spec on disk always names weights
    that are complete.
    """
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    atomic_save_tensors(weights, tensors)
    write_spec(directory, {**spec, "weights_sha256": sha256_file(weights)})
    return directory


def _read(directory: str | os.PathLike, name: str) -> bytes:
    """The bytes of file `name` of a model directory: read, or decrypted in memory when the
    directory is encrypted (`gankit.crypto`)."""
    if is_encrypted_dir(directory):
        from gankit.crypto import read_file

        return read_file(directory, name)
    return (Path(directory) / name).read_bytes()


def read_spec(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check `model.json` of a model directory."""
    directory = Path(directory)
    spec_path = directory / SPEC_FILE
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    if not spec_path.is_file() and not is_encrypted_dir(directory):
        raise CheckpointError(f"{spec_path}: missing; is {directory} a gankit model directory?")
    try:
        spec = json.loads(_read(directory, SPEC_FILE))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{spec_path}: not valid JSON ({exc})") from exc
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
        raise CheckpointError(f"{spec_path}: format is {found!r}, expected {FORMAT!r}")
    if not isinstance(spec.get("weights_sha256"), str):
        raise CheckpointError(f"{spec_path}: 'weights_sha256' is missing")
    recorded = spec.get(SPEC_HASH_KEY)
    if recorded is None:
        warnings.warn(
            f"{spec_path}: no 'spec_sha256' (written before gankit sealed model.json), so edits "
            f"to the spec cannot be detected; the spec is still checked against the weights' "
            f"shapes. Re-save it with `gankit check {directory} --reseal` after checking it",
            UnsealedSpecWarning,
            stacklevel=2,
        )
    elif recorded != spec_sha256(spec):
        raise CheckpointError(
            f"{spec_path}: SHA-256 of the spec {spec_sha256(spec)[:16]}… does not match its "
            f"'spec_sha256' ({str(recorded)[:16]}…); model.json was edited or corrupted"
        )
    return spec


def verify_model_dir(directory: str | os.PathLike) -> dict[str, Any]:
    """Return the spec if the weights match their recorded SHA-256, else raise CheckpointError."""
    spec = read_spec(directory)
    weights = Path(directory) / WEIGHTS_FILE
    if is_encrypted_dir(directory):  # the hash covers the plaintext, decrypted in memory
        actual = hashlib.sha256(_read(directory, WEIGHTS_FILE)).hexdigest()
    elif not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    else:
        actual = sha256_file(weights)
    if actual != spec["weights_sha256"]:
        raise CheckpointError(
            f"{weights}: SHA-256 {actual[:16]}… does not match model.json "
            f"({spec['weights_sha256'][:16]}…); the file was modified or corrupted"
        )
    return spec


def read_model_dir(
    directory: str | os.PathLike,
    kinds: tuple[str, ...] | None = None,
    check: Callable[[Path, dict[str, Any]], None] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load (tensors, spec) after checking the hashes (and the kind, if `kinds` is given).

    `check(directory, spec)`, if given, runs before any tensor is read: the place to compare the
    spec with the weights' shapes (`check_module_fits`). A KeyError, TypeError or ValueError it
    raises becomes a CheckpointError. Never unpickles.
    """
    spec = verify_model_dir(directory)
    if kinds is not None and spec.get("kind") not in kinds:
        raise CheckpointError(
            f"{directory}: model kind is {spec.get('kind')!r}, expected {' or '.join(kinds)}"
        )
    if check is not None:
        try:
            check(Path(directory), spec)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{Path(directory) / SPEC_FILE}: incomplete or inconsistent spec ({exc!r})"
            ) from exc
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    weights = Path(directory) / WEIGHTS_FILE
    try:
        if is_encrypted_dir(directory):  # decrypted in memory; the bytes loaded are hashed
            data = _read(directory, WEIGHTS_FILE)
            if hashlib.sha256(data).hexdigest() != spec["weights_sha256"]:
                raise CheckpointError(f"{weights}: SHA-256 does not match model.json")
            tensors = load(data)
        else:
            tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: unreadable safetensors file ({exc})") from exc
    return tensors, spec


def reseal_model_dir(directory: str | os.PathLike) -> dict[str, Any]:
    """Record the spec hash of a model directory written before specs were sealed.

    The weights must still match their hash. Only run it on a directory you trust: it makes the
    spec as it is now the reference.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsealedSpecWarning)
        spec = verify_model_dir(directory)
    return write_spec(directory, spec)


# ------------------------------------------------------------------ spec against the weights
def weight_shapes(directory: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the weights file, from its header alone (no tensor is
    read, so this costs microseconds whatever the file holds)."""
    from safetensors import SafetensorError, safe_open

    weights = Path(directory) / WEIGHTS_FILE
    if is_encrypted_dir(directory):
        return _header_shapes(_read(directory, WEIGHTS_FILE), weights)
    try:
        with safe_open(str(weights), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: unreadable safetensors file ({exc})") from exc


def _header_shapes(data: bytes, where: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape from the JSON header of safetensors bytes (an encrypted directory's
    weights, already in memory)."""
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size])
        return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{where}: unreadable safetensors header ({exc})") from exc


def check_bounds(where: str, values: dict[str, Any], bounds: dict[str, tuple[int, int]]) -> None:
    """CheckpointError unless each present `values[key]` is an int within `bounds[key]`.

    Cheap sanity limits checked before anything is built, so that a count which is no tensor
    shape (a depth, a latent size used only to draw noise) cannot ask for a huge loop or array.
    """
    for key, (low, high) in bounds.items():
        if key not in values or values[key] is None:
            continue
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CheckpointError(
                f"{where}: {key!r} is {value!r}, expected an integer in {low}..{high}"
            )


def check_module_fits(
    build: Callable[[], nn.Module],
    shapes: dict[str, tuple[int, ...]],
    *,
    prefix: str = "",
    where: str,
    probe: Callable[[nn.Module], None] | None = None,
) -> None:
    """Check, allocating nothing, that the module `build()` makes fits the saved weights.

    `build` runs on the meta device (tensors without storage, so even a 10^12-wide layer costs
    nothing); its state_dict must have exactly the names and shapes the weights file holds under
    `prefix` (`shapes` from `weight_shapes`). `probe(module)` may then run a meta forward pass to
    check the spec's other numbers (latent size, output shape) against the network. Raises
    CheckpointError naming the first mismatch; call it before building the module for real.
    """
    import torch

    try:
        with torch.device("meta"):
            module = build()
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise CheckpointError(
            f"{where}: the spec does not describe a valid network ({exc})"
        ) from exc
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    saved = {k[len(prefix) :]: v for k, v in shapes.items() if k.startswith(prefix)}
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{where}: the weights do not fit the spec: missing {missing[:3]}, unexpected "
            f"{extra[:3]} ({len(missing)} missing, {len(extra)} unexpected)"
        )
    for name, shape in expected.items():
        if saved[name] != shape:
            raise CheckpointError(
                f"{where}: tensor {prefix}{name!r} has shape {list(saved[name])} in the weights "
                f"but the spec builds {list(shape)}"
            )
    if probe is not None:
        try:
            with torch.no_grad():
                probe(module)
        except CheckpointError:
            raise
        except (TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise CheckpointError(f"{where}: the spec does not fit the network ({exc})") from exc


def check_model_dir(directory: str | os.PathLike) -> dict[str, Any]:
    """Verify a model directory the way its loader does and load it once; returns its spec.

    The hashes, the spec against the weights' shapes (before anything is allocated), then the
    real load. Raises CheckpointError (with UnsealedSpecWarning for an unsealed spec).
    """
    from gankit.registry import kind

    spec = verify_model_dir(directory)
    kind(spec.get("kind"), directory).load(directory)
    return spec
