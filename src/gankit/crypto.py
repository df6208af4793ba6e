"""Encryption at rest: model directories and generated files under AES-256-GCM.

One encrypted file is a small header and the AES-GCM ciphertext (with its 16-byte tag):

    b"GKAES256" | version 1 | key check (8) | nonce (12) | context length (2) | context JSON

The context names the file (`{"name": "model.safetensors", "dir": "<directory id>"}`) and the
whole header is the GCM associated data, so a file renamed, moved to another directory or
swapped with its neighbour fails authentication instead of decrypting into the wrong place.
Every file gets a fresh random 96-bit nonce. The key check (HMAC-SHA256 of a constant under the
key, 8 bytes) tells a wrong key ("this key did not encrypt it") from a modified file ("the tag
does not match"); it reveals nothing about the key.

An encrypted model directory holds `encrypted.json` (plain: format, cipher, directory id, key
check, file list) and one `NAME.enc` per file. `gankit.modeldir` reads such a directory
transparently: files are decrypted into memory, never to disk, and the SHA-256 checks of
`model.json` still run on the *plaintext* (the hashes recorded before encryption), so the
integrity check means the same with or without encryption, and GCM adds tamper detection of the
ciphertext on top.

The key (32 bytes, hex or base64, or raw in a file) comes from `using_key(...)`, else the
`GANKIT_KEY` environment variable, else the file named by `GANKIT_KEY_FILE`; it is never
written beside the data (`encrypt_*` refuse a key file inside the directory they encrypt).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import hashlib
import hmac
import json
import os
import secrets
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gankit.errors import CheckpointError, ConfigError

KEY_ENV = "GANKIT_KEY"
KEY_FILE_ENV = "GANKIT_KEY_FILE"
MANIFEST = "encrypted.json"
SUFFIX = ".enc"
FORMAT = "gankit-encrypted/1"
CIPHER = "AES-256-GCM"
MAGIC = b"GKAES256"
VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
_HEADER = struct.Struct(">8sB8s12sH")  # magic, version, key check, nonce, context length

_KEY: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("gankit_key", default=None)


# ------------------------------------------------------------------------------------ keys
def parse_key(raw: str | bytes, where: str) -> bytes:
    """32 key bytes from hex (64 digits), base64 (44 characters) or 32 raw bytes."""
    if isinstance(raw, bytes) and len(raw) == KEY_BYTES:
        return raw
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    text = text.strip()
    with contextlib.suppress(ValueError):
        if len(text) == 2 * KEY_BYTES:
            return bytes.fromhex(text)
    with contextlib.suppress(binascii.Error, ValueError):
        key = base64.b64decode(text, validate=True)
        if len(key) == KEY_BYTES:
            return key
    raise ConfigError(
        f"{where}: not a 256-bit key; expected 64 hex digits or 44 base64 characters "
        "(make one with `gankit keygen KEYFILE`)"
    )


def read_key_file(path: str | os.PathLike) -> bytes:
    """The key stored in `path` (as `gankit keygen` writes it)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: key file not found")
    return parse_key(path.read_bytes(), str(path))


def write_key_file(path: str | os.PathLike) -> Path:
    """Create `path` with a fresh random key (hex, mode 0600); never overwrites a file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path}: exists; a key file is never overwritten") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
    return path


@contextlib.contextmanager
def using_key(key: bytes | None) -> Iterator[None]:
    """Within the block, encrypted model directories are opened with `key`."""
    token = _KEY.set(key)
    try:
        yield
    finally:
        _KEY.reset(token)


def current_key(where: str) -> bytes:
    """The key to open `where` with: `using_key`, else $GANKIT_KEY, else $GANKIT_KEY_FILE."""
    key = _KEY.get()
    if key is not None:
        return key
    if os.environ.get(KEY_ENV):
        return parse_key(os.environ[KEY_ENV], f"${KEY_ENV}")
    if os.environ.get(KEY_FILE_ENV):
        return read_key_file(os.environ[KEY_FILE_ENV])
    raise CheckpointError(
        f"{where} is encrypted and no key was given; set {KEY_ENV} (hex or base64) or "
        f"{KEY_FILE_ENV}=KEYFILE, or pass --key-file"
    )


def key_check(key: bytes) -> bytes:
    """8 bytes that identify a key without revealing it (HMAC-SHA256 of a constant)."""
    return hmac.new(key, b"gankit key check v1", hashlib.sha256).digest()[:8]


# ------------------------------------------------------------------------------- one blob
def _aesgcm(key: bytes) -> Any:
    from gankit.errors import require

    aead = require("cryptography.hazmat.primitives.ciphers.aead", "secure")
    if len(key) != KEY_BYTES:
        raise ConfigError(f"an AES-256 key has {KEY_BYTES} bytes, got {len(key)}")
    return aead.AESGCM(key)


def seal(data: bytes, key: bytes, name: str, directory_id: str | None = None) -> bytes:
    """Encrypt `data` as the file `name` (of the encrypted directory `directory_id`)."""
    context = json.dumps({"name": name, "dir": directory_id}, sort_keys=True).encode()
    nonce = secrets.token_bytes(NONCE_BYTES)
    header = _HEADER.pack(MAGIC, VERSION, key_check(key), nonce, len(context)) + context
    return header + _aesgcm(key).encrypt(nonce, data, header)


def unseal(
    blob: bytes, key: bytes, where: str, name: str | None = None, directory_id: str | None = None
) -> bytes:
    """Decrypt a `seal` blob; CheckpointError for a wrong key, a modified or swapped file."""
    if len(blob) < _HEADER.size or blob[:8] != MAGIC:
        raise CheckpointError(f"{where}: not a gankit encrypted file")
    _, version, check, nonce, length = _HEADER.unpack_from(blob)
    if version != VERSION:
        raise CheckpointError(f"{where}: encryption format version {version}, expected {VERSION}")
    if not hmac.compare_digest(check, key_check(key)):
        raise CheckpointError(f"{where}: wrong key (this key did not encrypt the file)")
    end = _HEADER.size + length
    header = blob[:end]
    try:
        context = json.loads(blob[_HEADER.size : end])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{where}: corrupted encryption header") from exc
    from cryptography.exceptions import InvalidTag

    try:
        data = _aesgcm(key).decrypt(nonce, blob[end:], header)
    except InvalidTag as exc:
        raise CheckpointError(
            f"{where}: authentication failed; the encrypted file was modified or corrupted"
        ) from exc
    if name is not None and context.get("name") != name:
        raise CheckpointError(
            f"{where}: holds the encrypted {context.get('name')!r}, not {name!r}; files swapped?"
        )
    if directory_id is not None and context.get("dir") != directory_id:
        raise CheckpointError(f"{where}: belongs to another encrypted directory")
    return data


# ---------------------------------------------------------------------------- directories
def is_encrypted_dir(directory: str | os.PathLike) -> bool:
    """True when `directory` was written by `encrypt_dir` (it holds `encrypted.json`)."""
    return (Path(directory) / MANIFEST).is_file()


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The plain `encrypted.json` of an encrypted directory (checked)."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} manifest")
    return manifest


_LAST: dict[str, Any] = {}  # the last file decrypted: a load reads the weights 3 times
_LAST_LOCK = threading.Lock()


def read_file(directory: str | os.PathLike, name: str) -> bytes:
    """The plaintext of file `name` of an encrypted directory, decrypted in memory.

    The last file decrypted is kept (keyed by its path, inode, size, mtime and the key check),
    so the hash check, the shape check and the load of one model decrypt its weights once."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    path = directory / (name + SUFFIX)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    key = current_key(str(directory))
    stat = path.stat()
    signature = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, key_check(key))
    with _LAST_LOCK:
        if _LAST.get("signature") == signature:
            return _LAST["data"]
    data = unseal(path.read_bytes(), key, str(path), name, str(manifest.get("dir_id")))
    with _LAST_LOCK:
        _LAST.update(signature=signature, data=data)
    return data


def _check_key_location(key_file: str | os.PathLike | None, target: Path) -> None:
    """Refuse a key file stored inside (or beside, for a file) what it encrypts."""
    if key_file is None:
        return
    key_path = Path(key_file).resolve()
    home = target.resolve() if target.is_dir() else target.resolve().parent
    if key_path.is_relative_to(home):
        raise ConfigError(
            f"{key_file}: the key file lies in {home}, beside the data it protects; keep keys "
            "elsewhere (a secrets store, another volume)"
        )


def encrypt_dir(
    src: str | os.PathLike,
    key: bytes,
    out: str | os.PathLike | None = None,
    key_file: str | os.PathLike | None = None,
) -> Path:
    """Encrypt every file of a model directory into `out` (default: in place, plaintext
    removed). The directory is verified first, so only an intact model is encrypted."""
    from gankit.modeldir import atomic_write_bytes, atomic_write_json, verify_model_dir

    src = Path(src)
    _check_key_location(key_file, src)
    if is_encrypted_dir(src):
        raise ConfigError(f"{src}: already encrypted")
    verify_model_dir(src)
    dst = Path(out) if out is not None else src
    names = sorted(p.name for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    directory_id = secrets.token_hex(16)
    for name in names:
        sealed = seal((src / name).read_bytes(), key, name, directory_id)
        atomic_write_bytes(dst / (name + SUFFIX), sealed)
    manifest = {
        "format": FORMAT,
        "cipher": CIPHER,
        "dir_id": directory_id,
        "key_check": key_check(key).hex(),
        "files": names,
        "integrity": "model.json's SHA-256 hashes cover the plaintext; GCM tags the ciphertext",
    }
    atomic_write_json(dst / MANIFEST, manifest)
    if dst == src:
        for name in names:
            (src / name).unlink()
    return dst


def decrypt_dir(src: str | os.PathLike, key: bytes, out: str | os.PathLike | None = None) -> Path:
    """Write the plaintext of an encrypted directory to `out` (default: in place)."""
    from gankit.modeldir import atomic_write_bytes, verify_model_dir

    src = Path(src)
    manifest = read_manifest(src)
    dst = Path(out) if out is not None else src
    with using_key(key):
        plain = {name: read_file(src, name) for name in manifest.get("files", [])}
    for name, data in plain.items():
        atomic_write_bytes(dst / name, data)
    if dst == src:
        for name in plain:
            (src / (name + SUFFIX)).unlink()
        (src / MANIFEST).unlink()
    verify_model_dir(dst)
    return dst


# ---------------------------------------------------------------------------- single files
def encrypt_file(
    src: str | os.PathLike,
    key: bytes,
    out: str | os.PathLike | None = None,
    key_file: str | os.PathLike | None = None,
) -> Path:
    """Encrypt a generated file (CSV, PNG, ...) to `out` (default `SRC.enc`; SRC is kept)."""
    src = Path(src)
    _check_key_location(key_file, src)
    dst = Path(out) if out is not None else src.with_name(src.name + SUFFIX)
    from gankit.modeldir import atomic_write_bytes

    atomic_write_bytes(dst, seal(src.read_bytes(), key, src.name))
    return dst


def decrypt_file(src: str | os.PathLike, key: bytes, out: str | os.PathLike | None = None) -> Path:
    """Decrypt a file written by `encrypt_file` to `out` (default: the name it was sealed
    under, beside SRC)."""
    from gankit.modeldir import atomic_write_bytes

    src = Path(src)
    blob = src.read_bytes()
    data = unseal(blob, key, str(src))
    if out is None:
        _, _, _, _, length = _HEADER.unpack_from(blob)
        name = Path(json.loads(blob[_HEADER.size : _HEADER.size + length])["name"]).name
        out = src.with_name(name)
    atomic_write_bytes(out, data)
    return Path(out)


# ------------------------------------------------------------------------------------ CLI
def register(subparsers: Any) -> None:
    """Add `gankit keygen`, `gankit encrypt` and `gankit decrypt`."""
    p = subparsers.add_parser("keygen", help="write a new random AES-256 key file (mode 0600)")
    p.add_argument("file", help="key file to create (keep it away from the data)")
    p.set_defaults(handler=_keygen)
    for action, text in (("encrypt", "encrypt"), ("decrypt", "decrypt")):
        p = subparsers.add_parser(
            action, help=f"{text} a model directory or a generated file (AES-256-GCM)"
        )
        p.add_argument("path", help="model directory, or a file (CSV, PNG, ...)")
        p.add_argument("--key-file", help=f"key file (default: ${KEY_ENV} or ${KEY_FILE_ENV})")
        p.add_argument("--out", help="write here instead (default: in place for directories)")
        p.set_defaults(handler=_crypt, action=action)


def _keygen(args: Any) -> int:
    print(write_key_file(args.file))
    return 0


def _crypt(args: Any) -> int:
    path = Path(args.path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory")
    key = read_key_file(args.key_file) if args.key_file else current_key(str(path))
    key_file = args.key_file or os.environ.get(KEY_FILE_ENV)
    if args.action == "encrypt":
        if path.is_dir():
            done = encrypt_dir(path, key, args.out, key_file)
        else:
            done = encrypt_file(path, key, args.out, key_file)
    else:
        done = (
            decrypt_dir(path, key, args.out) if path.is_dir() else decrypt_file(path, key, args.out)
        )
    print(done)
    return 0
