"""`POST /v1/generate` with `codes`: InfoGAN's latent codes through the service (issue 12). The
route must answer what `Generator.sample(..., codes=...)` answers, and refuse bad codes with a
422 that names the field — never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from gankit.generator import load_generator
from gankit.serve import Limits, ServeOptions, create_app


@pytest.fixture(scope="module")
def infogan_dir(infogan_run: Path) -> Path:
    """The tiny digits InfoGAN of tests/conftest.py, served as "infogan"."""
    return infogan_run


@pytest.fixture(scope="module")
def served(infogan_dir: Path, model_dirs: dict[str, Path], keys: Any):
    """The InfoGAN and the digits DCGAN (no codes) behind one app; the generate key."""
    options = ServeOptions(keys=keys[0], limits=Limits(max_n=16, rate=0, address_rate=0))
    app = create_app([infogan_dir, model_dirs["digits"]], options=options)
    assert not app.state.service.refused
    with TestClient(app) as client:
        yield client, {"X-API-Key": keys[1]["generate"]}


def post(served, **body: Any):
    client, headers = served
    return client.post("/v1/generate", json={"model": "infogan", **body}, headers=headers)


@pytest.mark.parametrize(
    "codes",
    [
        {"categorical": 3, "continuous": [0.5, None]},
        {"categorical": [0, 1, 2, 9]},
        {"continuous": [[0.0, 1.0], [-1, 2], [0.5, 0.5], [2, -2]]},
    ],
)
def test_codes_match_the_python_api(served, infogan_dir, codes):
    response = post(served, n=4, seed=7, codes=codes)
    assert response.status_code == 200, response.text
    got = torch.tensor(response.json()["data"])
    expected = load_generator(infogan_dir).sample(4, seed=7, codes=codes)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    other = dict(codes, categorical=5) if "categorical" in codes else {"categorical": 5}
    assert not torch.allclose(
        got, torch.tensor(post(served, n=4, seed=7, codes=other).json()["data"])
    )


def test_model_info_shows_the_code_layout(served):
    client, headers = served
    models = {m["name"]: m for m in client.get("/v1/models", headers=headers).json()["models"]}
    assert models["infogan"]["spec"]["codes"]["categorical"] == 10
    assert models["infogan"]["spec"]["codes"]["continuous"] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"codes": {"categorical": 10}}, "categories must be in 0..9"),
        ({"codes": {"categorical": -1}}, "categories must be in 0..9"),
        ({"codes": {"categorical": [1, 2]}}, "expected one category or 4"),
        ({"codes": {"categorical": "3"}}, ""),
        ({"codes": {"categorical": 1.5}}, ""),
        ({"codes": {"cat": 3}}, ""),
        ({"codes": {"continuous": [0.5]}}, "continuous codes must be 2 finite numbers"),
        ({"codes": {"continuous": [[0.5, 1.0]]}}, "continuous codes must be 2 finite numbers"),
        ({"codes": {"continuous": [1e9, 0]}}, ""),
        ({"codes": [3]}, ""),
        ({"codes": {"categorical": 1}, "rejection": True}, "rejection sampling takes neither"),
        ({"codes": {"categorical": 1}, "model": "digits"}, "has no latent codes"),
    ],
)
def test_bad_codes_are_422(served, body, message):
    response = post(served, **{"n": 4, "seed": 1, **body})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in str(detail)
    if message and "rejection" not in message:
        assert detail[0]["loc"][:2] == ["body", "codes"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_codes_are_422(served, value):
    client, headers = served
    raw = '{"model": "infogan", "n": 2, "codes": {"continuous": [' + value + ", 0]}}"
    headers = {**headers, "Content-Type": "application/json"}
    response = client.post("/v1/generate", content=raw, headers=headers)
    assert response.status_code == 422, response.text
