"""Fixtures for the service tests: tiny real model directories, keys, clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gankit.bench.serve import make_generator_dir
from gankit.serve import KeyStore, Limits, ServeOptions, create_app
from gankit.serve.auth import make_key

from .serve_helpers import tabular_dirs, tiny_models


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small digits DCGAN and a 2-D toy MLP generator."""
    root = tmp_path_factory.mktemp("models")
    return {
        "digits": make_generator_dir(root / "digits", width=16, latent_dim=16),
        "ring": make_generator_dir(root / "ring", family="mlp", shape=(2,), latent_dim=2, width=16),
    }


@pytest.fixture(scope="session")
def keys() -> tuple[KeyStore, dict[str, str]]:
    """Keys per scope, plus an admin key."""
    plain, records = {}, []
    for scope in ("generate", "impute", "synthesize", "admin"):
        key, record = make_key(scope, [scope])
        plain[scope] = key
        records.append(record)
    return KeyStore(records), plain


def make_client(
    model_dirs: dict[str, Path], keys: Any, tmp_path: Path, docs: bool = False, **limits: Any
) -> TestClient:
    """A TestClient over an app with both generators, the tiny imputer and synthesizer (real
    models, fitted once per session) and an audit log."""
    options = ServeOptions(
        keys=keys[0], limits=Limits(**limits), audit_log=tmp_path / "audit.jsonl", docs=docs
    )
    return TestClient(create_app([*model_dirs.values(), *tabular_dirs()], options=options))


@pytest.fixture
def client(model_dirs: dict[str, Path], keys: Any, tmp_path: Path) -> TestClient:
    with make_client(model_dirs, keys, tmp_path) as c:
        yield c


@pytest.fixture
def client_with(model_dirs: dict[str, Path], keys: Any, tmp_path: Path):
    """Build a client with other limits: `client_with(max_n=2, rate=1)` (or `docs=True`)."""
    return lambda **limits: make_client(model_dirs, keys, tmp_path, **limits)


@pytest.fixture(scope="session")
def tiny() -> dict[str, Path]:
    """Real tiny models: "imp", "synth", "ids" (imputer with an identifier column), "trained"."""
    return tiny_models()


@pytest.fixture
def headers(keys: Any) -> dict[str, dict[str, str]]:
    return {scope: {"X-API-Key": key} for scope, key in keys[1].items()}
