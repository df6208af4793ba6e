"""`POST /v1/translate`: a tiny trained CycleGAN behind the service (issue 13). The route must
answer exactly what the Python `translate` API answers, and refuse bad input with a 4xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from gankit.config import load_config
from gankit.engine import train
from gankit.models.cyclegan import load_cyclegan
from gankit.registry import CYCLEGAN_KIND
from gankit.serve import Limits, ServeOptions, create_app

RECIPE = "configs/digits-cyclegan.yaml"
TINY = [  # as tests/models/test_cyclegan.py, fewer steps: the route, not the training, is tested
    "model.g_width=4",
    "model.d_width=4",
    "model.g_blocks=1",
    "model.pool_size=2",
    "train.batch_size=4",
    "train.steps=2",
    "train.progress=false",
    "train.log_every=1",
    "train.checkpoint_every=100",
    "train.sample_every=100",
]
SHAPE = (1, 8, 8)  # the digits recipe: 8×8 grey images
MAX_N = 4


@pytest.fixture(scope="module")
def cyclegan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cyclegan") / "digits-cyclegan"
    return train(load_config(RECIPE, TINY), out).path


@pytest.fixture(scope="module")
def app_client(
    cyclegan_dir: Path, model_dirs: dict[str, Path], keys: Any
) -> tuple[TestClient, str]:
    """The CycleGAN and the digits DCGAN (a generator, which cannot translate)."""
    options = ServeOptions(keys=keys[0], limits=Limits(max_n=MAX_N, rate=0, address_rate=0))
    app = create_app([cyclegan_dir, model_dirs["digits"]], options=options)
    assert not app.state.service.refused
    name = next(m.name for m in app.state.service.models.values() if m.kind == CYCLEGAN_KIND)
    with TestClient(app) as client:
        yield client, name


def images(n: int, seed: int = 0) -> torch.Tensor:
    """n images in [-1, 1]."""
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def post(client: TestClient, body: dict[str, Any], key: str | None) -> Any:
    headers = {"X-API-Key": key} if key else {}
    return client.post("/v1/translate", json=body, headers=headers)


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_translate_matches_the_python_api(app_client, cyclegan_dir, headers, direction):
    client, name = app_client
    x = images(3)
    body = {"model": name, "x": x.reshape(3, -1).tolist(), "direction": direction}
    response = post(client, body, headers["generate"]["X-API-Key"])
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model"] == name and out["direction"] == direction
    assert out["shape"] == list(SHAPE)
    got = torch.tensor(out["x"]).view(3, *SHAPE)
    expected = load_cyclegan(cyclegan_dir).translate(x, direction)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # the two generators differ, so the direction really selects one
    other = load_cyclegan(cyclegan_dir).translate(x, "b2a" if direction == "a2b" else "a2b")
    assert not torch.allclose(got, other, atol=1e-3)


def test_models_lists_the_translator_and_the_schema_its_limits(app_client, headers):
    client, name = app_client
    listed = client.get("/v1/models", headers=headers["generate"]).json()["models"]
    info = next(m for m in listed if m["name"] == name)
    assert info["kind"] == CYCLEGAN_KIND
    assert set(info["tags"]) == {"image", "translation"}
    assert info["output_shape"] == list(SHAPE) and info["data_range"] == [-1.0, 1.0]
    request = client.get("/openapi.json").json()["components"]["schemas"]["TranslateRequest"]
    assert request["properties"]["model"]["enum"] == [name]
    assert request["properties"]["x"]["maxItems"] == MAX_N


def _flat(n: int = 1) -> list[list[float]]:
    return images(n).reshape(n, -1).tolist()


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"direction": "a2c"}, ["body", "direction"], "a2b"),
        ({"x": [[0.0] * 63]}, ["body", "x", 0], "expected 64 values"),
        ({"x": [[2.0] * 64]}, ["body", "x", 0], "[-1.0, 1.0]"),
        ({"x": _flat(MAX_N + 1)}, ["body", "x"], f"<= {MAX_N}"),
        ({"x": []}, ["body", "x"], "at least 1"),
        ({"x": "image"}, ["body", "x"], "list"),
    ],
)
def test_bad_requests_get_422_naming_the_field(app_client, headers, change, loc, words):
    client, name = app_client
    body = {"model": name, "x": _flat(), "direction": "a2b", **change}
    response = post(client, body, headers["generate"]["X-API-Key"])
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["loc"] == loc
    assert words in problem["msg"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_pixels_get_422(app_client, headers, value):
    client, name = app_client
    pixels = ", ".join(["0.0"] * 63 + [value])
    raw = f'{{"model": {json.dumps(name)}, "x": [[{pixels}]], "direction": "b2a"}}'
    response = client.post(
        "/v1/translate",
        content=raw,
        headers={**headers["generate"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "x", 0, 63]


def test_keys_and_scopes(app_client, headers):
    client, name = app_client
    body = {"model": name, "x": _flat()}
    assert post(client, body, None).status_code == 401
    assert post(client, body, "gk_nobody_secret").status_code == 401
    denied = post(client, body, headers["impute"]["X-API-Key"])
    assert denied.status_code == 403 and "'generate' scope" in denied.json()["detail"]
    assert post(client, body, headers["admin"]["X-API-Key"]).status_code == 200


def test_only_translators_translate(app_client, headers):
    client, name = app_client
    key = headers["generate"]["X-API-Key"]
    generator = post(client, {"model": "digits", "x": _flat()}, key)
    assert generator.status_code == 422
    assert f"this endpoint needs [{CYCLEGAN_KIND!r}]" in generator.json()["detail"][0]["msg"]
    assert post(client, {"model": "nope", "x": _flat()}, key).status_code == 404
    # and a translator draws no samples
    sampled = client.post("/v1/generate", json={"model": name}, headers=headers["generate"])
    assert sampled.status_code == 422
    assert f"model {name!r} is a {CYCLEGAN_KIND}" in sampled.json()["detail"][0]["msg"]
