"""API keys with scopes: stored as salted SHA-256 hashes, compared in constant time.

A key looks like ``gk_<id>_<secret>``. The id names the key in logs and the audit trail (the
secret never appears anywhere after it is printed once); the secret is 256 random bits. Because
the secret is random and long, a fast salted hash is enough: a slow password hash (scrypt,
PBKDF2) protects low-entropy passwords and would cost milliseconds on every request.

Keys come from a JSON file (``{"keys": [{"id", "salt", "sha256", "scopes"}]}``, written by
``gankit apikey``) or from the ``GANKIT_API_KEYS`` environment variable, which holds either the
same JSON or plaintext entries ``gk_<id>_<secret>=scope+scope,...`` that are hashed on load.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.errors import ConfigError
from gankit.modeldir import atomic_write_json

SCOPES: tuple[str, ...] = ("generate", "impute", "synthesize", "admin")
ENV_VAR = "GANKIT_API_KEYS"
_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_PREFIX = "gk"


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: its id, salt, salted hash and scopes (never the secret)."""

    key_id: str
    salt: bytes
    digest: bytes
    scopes: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        """The record as stored in the key file."""
        return {
            "id": self.key_id,
            "salt": self.salt.hex(),
            "sha256": self.digest.hex(),
            "scopes": sorted(self.scopes),
        }


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key id and what it may do."""

    key_id: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    def allows(self, scope: str) -> bool:
        """`admin` implies every scope."""
        return scope in self.scopes or "admin" in self.scopes


def _hash(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def _check_scopes(scopes: Any, where: str) -> frozenset[str]:
    if isinstance(scopes, str):
        scopes = [s for s in re.split(r"[+,\s]+", scopes) if s]
    if not isinstance(scopes, list | tuple) or not scopes:
        raise ConfigError(f"{where}: 'scopes' must be a non-empty list of {list(SCOPES)}")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ConfigError(f"{where}: unknown scope(s) {unknown}; expected some of {list(SCOPES)}")
    return frozenset(scopes)


def split_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX or not _ID_RE.match(parts[1]) or not parts[2]:
        return None
    return parts[1], parts[2]


def make_key(key_id: str, scopes: list[str] | str) -> tuple[str, KeyRecord]:
    """A new random key and the record to store for it (the key is shown once, never stored)."""
    if not _ID_RE.match(key_id):
        raise ConfigError(f"key id {key_id!r}: expected 1-32 letters, digits or '-'")
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = KeyRecord(key_id, salt, _hash(salt, secret), _check_scopes(scopes, f"key {key_id}"))
    return f"{_PREFIX}_{key_id}_{secret}", record


def _record_from_json(obj: Any, where: str) -> KeyRecord:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: each key must be an object with id, salt, sha256, scopes")
    try:
        key_id, salt, digest = obj["id"], bytes.fromhex(obj["salt"]), bytes.fromhex(obj["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: key record needs 'id', hex 'salt' and hex 'sha256'") from exc
    if not isinstance(key_id, str) or not _ID_RE.match(key_id) or len(digest) != 32:
        raise ConfigError(f"{where}: bad key record for id {key_id!r}")
    return KeyRecord(key_id, salt, digest, _check_scopes(obj.get("scopes"), f"{where}: {key_id}"))


def _records_from_text(text: str, where: str) -> list[KeyRecord]:
    text = text.strip()
    if text.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc})") from exc
        items = data.get("keys") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ConfigError(f"{where}: expected {{'keys': [...]}}")
        return [_record_from_json(item, where) for item in items]
    records = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        key, _, scopes = entry.partition("=")
        parts = split_key(key)
        if parts is None:
            raise ConfigError(f"{where}: entry is not 'gk_<id>_<secret>=scope+scope'")
        salt = secrets.token_bytes(16)
        records.append(
            KeyRecord(parts[0], salt, _hash(salt, parts[1]), _check_scopes(scopes, where))
        )
    return records


class KeyStore:
    """Verifies presented keys against salted hashes; lookup by id, constant-time compare."""

    def __init__(self, records: list[KeyRecord]):
        self._records: dict[str, KeyRecord] = {}
        for record in records:
            if record.key_id in self._records:
                raise ConfigError(f"API key id {record.key_id!r} appears twice")
            self._records[record.key_id] = record
        self._dummy = KeyRecord("-", secrets.token_bytes(16), secrets.token_bytes(32), frozenset())

    def __len__(self) -> int:
        return len(self._records)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, env: bool = True) -> KeyStore:
        """Keys from `path` and (if `env`) from the GANKIT_API_KEYS environment variable."""
        records: list[KeyRecord] = []
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"{path}: API key file not found")
            records += _records_from_text(path.read_text(), str(path))
        if env and os.environ.get(ENV_VAR):
            records += _records_from_text(os.environ[ENV_VAR], ENV_VAR)
        return cls(records)

    def verify(self, key: str | None) -> Principal | None:
        """The principal for a valid key, else None; the cost does not depend on what fails."""
        parts = split_key(key) if key else None
        key_id, secret = parts if parts else ("-", "")
        record = self._records.get(key_id)
        stored = record or self._dummy
        ok = hmac.compare_digest(_hash(stored.salt, secret), stored.digest)
        if record is None or not ok:
            return None
        return Principal(record.key_id, record.scopes)


def add_key(path: str | os.PathLike, key_id: str, scopes: list[str] | str) -> str:
    """Create a key, append its hashed record to the key file (created if absent), return it."""
    path = Path(path)
    existing = _records_from_text(path.read_text(), str(path)) if path.is_file() else []
    if any(r.key_id == key_id for r in existing):
        raise ConfigError(f"{path}: key id {key_id!r} already exists")
    key, record = make_key(key_id, scopes)
    atomic_write_json(path, {"keys": [r.to_json() for r in [*existing, record]]})
    os.chmod(path, 0o600)
    return key
