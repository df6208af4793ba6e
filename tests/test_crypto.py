"""Encryption at rest (gankit.crypto): round trips, wrong and missing keys, tampering, swaps,
and the loaders and the service opening an encrypted model directory in memory."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import gankit
from gankit.bench.serve import make_generator_dir
from gankit.cli import main
from gankit.crypto import (
    KEY_ENV,
    KEY_FILE_ENV,
    SUFFIX,
    decrypt_dir,
    encrypt_dir,
    encrypt_file,
    parse_key,
    using_key,
)
from gankit.errors import CheckpointError, ConfigError
from gankit.modeldir import SPEC_FILE, WEIGHTS_FILE, read_spec, sha256_file
from gankit.registry import load
from gankit.tabular import GANImputer

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generator_dir(
        tmp_path_factory.mktemp("plain") / "ring", family="mlp", shape=(2,), latent_dim=2, width=8
    )


@pytest.fixture
def sealed(plain: Path, tmp_path: Path) -> Path:
    return encrypt_dir(plain, KEY, tmp_path / "sealed")


def _draw(directory: Path) -> torch.Tensor:
    return gankit.load_generator(directory).sample(5, seed=3)


def test_round_trip_is_byte_identical_and_loads_in_memory(plain: Path, sealed: Path, tmp_path):
    names = sorted(p.name for p in sealed.iterdir())
    assert names == ["encrypted.json", SPEC_FILE + SUFFIX, WEIGHTS_FILE + SUFFIX]
    weights = (plain / WEIGHTS_FILE).read_bytes()
    assert weights[64:128] not in (sealed / (WEIGHTS_FILE + SUFFIX)).read_bytes()
    with using_key(KEY):  # loaded from memory: no plaintext file appears
        assert torch.equal(_draw(sealed), _draw(plain))
        assert read_spec(sealed)["weights_sha256"] == sha256_file(plain / WEIGHTS_FILE)
    assert sorted(p.name for p in sealed.iterdir()) == names
    out = decrypt_dir(sealed, KEY, tmp_path / "back")
    for name in (SPEC_FILE, WEIGHTS_FILE):
        assert (out / name).read_bytes() == (plain / name).read_bytes()


def test_nonces_differ_between_encryptions(plain: Path, tmp_path: Path):
    a = (encrypt_dir(plain, KEY, tmp_path / "a") / (WEIGHTS_FILE + SUFFIX)).read_bytes()
    b = (encrypt_dir(plain, KEY, tmp_path / "b") / (WEIGHTS_FILE + SUFFIX)).read_bytes()
    assert a[17:29] != b[17:29] and a[-100:] != b[-100:]  # nonce and ciphertext


def test_wrong_and_missing_key_are_clear_errors(sealed: Path):
    with pytest.raises(CheckpointError, match=r"is encrypted and no key was given.*GANKIT_KEY"):
        gankit.load_generator(sealed)
    with using_key(OTHER), pytest.raises(CheckpointError, match="wrong key"):
        gankit.load_generator(sealed)


def test_tampered_ciphertext_is_detected(sealed: Path):
    path = sealed / (WEIGHTS_FILE + SUFFIX)
    blob = bytearray(path.read_bytes())
    blob[-40] ^= 1
    path.write_bytes(bytes(blob))
    with using_key(KEY), pytest.raises(CheckpointError, match="authentication failed"):
        gankit.load_generator(sealed)


def test_swapped_files_are_detected(sealed: Path, plain: Path, tmp_path: Path):
    spec, weights = sealed / (SPEC_FILE + SUFFIX), sealed / (WEIGHTS_FILE + SUFFIX)
    a, b = spec.read_bytes(), weights.read_bytes()
    spec.write_bytes(b)
    weights.write_bytes(a)
    with using_key(KEY), pytest.raises(CheckpointError, match="files swapped"):
        read_spec(sealed)
    # the same file from another encryption (another directory id) is refused as well
    other = encrypt_dir(plain, KEY, tmp_path / "other")
    spec.write_bytes(a)
    shutil.copyfile(other / (WEIGHTS_FILE + SUFFIX), weights)
    with using_key(KEY), pytest.raises(CheckpointError, match="another encrypted directory"):
        gankit.load_generator(sealed)


def test_keys_from_env_and_cli(plain: Path, tmp_path: Path, monkeypatch, capsys):
    assert parse_key(KEY.hex(), "x") == KEY == parse_key(base64.b64encode(KEY).decode(), "x")
    with pytest.raises(ConfigError, match="not a 256-bit key"):
        parse_key("abc", "x")
    keyfile = tmp_path / "keys" / "k"
    keyfile.parent.mkdir()
    assert main(["keygen", str(keyfile)]) == 0
    assert keyfile.stat().st_mode & 0o077 == 0
    work = shutil.copytree(plain, tmp_path / "work")
    assert main(["encrypt", str(work), "--key-file", str(work / ".." / "keys" / "k")]) == 0
    assert not (work / WEIGHTS_FILE).exists()
    monkeypatch.setenv(KEY_FILE_ENV, str(keyfile))
    assert torch.equal(_draw(work), _draw(plain))
    assert main(["decrypt", str(work)]) == 0
    assert (work / WEIGHTS_FILE).read_bytes() == (plain / WEIGHTS_FILE).read_bytes()
    # a key kept beside the data is refused; a generated file round-trips under its own name
    inside = work / "key"
    inside.write_text(KEY.hex())
    assert main(["encrypt", str(work), "--key-file", str(inside)]) == 2
    assert "beside the data" in capsys.readouterr().err
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,2\n")
    sealed = encrypt_file(csv, parse_key(keyfile.read_text(), "k"), tmp_path / "x.bin")
    csv.unlink()
    assert main(["decrypt", str(sealed)]) == 0
    assert csv.read_text() == "a,b\n1,2\n"


def test_serve_opens_an_encrypted_directory(sealed: Path, plain: Path):
    from fastapi.testclient import TestClient

    from gankit.serve import ServeOptions, create_app

    options = ServeOptions(insecure_no_auth=True, encryption_key=KEY, batching=None)
    with TestClient(create_app([sealed], options=options)) as client:
        body = {"model": "sealed", "n": 3, "seed": 1, "format": "array"}
        got = client.post("/v1/generate", json=body).json()["data"]
    expected = gankit.load_generator(plain).sample(3, seed=1)
    assert torch.allclose(torch.tensor(got), expected, atol=1e-6)
    refused = create_app([sealed], options=ServeOptions(insecure_no_auth=True))
    assert "no key was given" in next(iter(refused.state.service.refused.values()))


def test_tabular_loader_opens_an_encrypted_imputer(tmp_path: Path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    table["b"] += table["a"]
    holed = table.mask(rng.random(table.shape) < 0.2)
    plain = GANImputer(n_steps=0, random_state=0).fit(holed).save(tmp_path / "imp")
    sealed = encrypt_dir(plain, KEY, tmp_path / "sealed")
    with using_key(KEY):
        filled = load(sealed).transform(holed)
    np.testing.assert_array_equal(filled, load(plain).transform(holed))
