"""Downloads with a SHA-256 check. Only called when a user asks; tests use local files.

The checksum is verified on a temporary file before it replaces the target, so a failed or
tampered download never leaves a file that later loads.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from gankit.errors import DataError


def download(url: str, path: str | os.PathLike, checksum: str, timeout: float = 60) -> Path:
    """Fetch `url` to `path` unless a file with the right hash is already there.

    `checksum` is "sha256:<hex>" (or "md5:<hex>" where the publisher gives nothing better,
    as for CIFAR-10).
    """
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("sha256", "md5") or not expected:
        raise DataError(f"checksum {checksum!r} must look like 'sha256:<hex>' or 'md5:<hex>'")
    path = Path(path)
    if path.is_file() and _hash_file(path, algorithm) == expected:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    digest = hashlib.new(algorithm)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise DataError(
                f"{url}: {algorithm} {digest.hexdigest()} does not match the expected "
                f"{expected}; the download was refused"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"{url}: download failed ({exc})") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
