"""The /v1 API: generation, metadata, formats, validation, tabular endpoints, micro-batching."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gankit.generator import load_generator
from gankit.serve import BatchConfig, KeyStore, ServeOptions, create_app
from gankit.tabular import GANImputer

from .serve_helpers import people, tabular_dirs


def test_health_ready_and_model_list(client, headers):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    body = client.get("/v1/models", headers=headers["impute"]).json()
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"digits", "ring", "imp", "synth"}
    assert by_name["digits"]["latent_dim"] == 16
    assert by_name["digits"]["output_shape"] == [1, 8, 8]
    assert by_name["digits"]["spec"]["weights_sha256"]
    assert by_name["imp"]["columns"][2] == {
        "name": "city",
        "kind": "categorical",
        "min": None,
        "max": None,
        "categories": ["a", "b"],
    }
    assert by_name["imp"]["columns"][0]["kind"] == "integer"  # the schema gankit wrote
    assert by_name["imp"]["columns"][1]["kind"] == "continuous"
    assert (
        client.get("/v1/models/ring", headers=headers["generate"]).json()["kind"] == "toy-generator"
    )
    assert client.get("/v1/models/nope", headers=headers["generate"]).status_code == 404


def test_generate_matches_library_and_is_seeded(client, headers, model_dirs):
    req = {"model": "digits", "n": 3, "seed": 7, "truncation": 1.5}
    first = client.post("/v1/generate", json=req, headers=headers["generate"]).json()
    again = client.post("/v1/generate", json=req, headers=headers["generate"]).json()
    assert first == again
    expected = load_generator(model_dirs["digits"]).sample(3, seed=7, truncation=1.5).numpy()
    np.testing.assert_allclose(np.array(first["data"]), expected, atol=1e-6)
    other = client.post("/v1/generate", json={**req, "seed": 8}, headers=headers["generate"]).json()
    assert other["data"] != first["data"]


def test_image_formats(client, headers):
    h = headers["generate"]
    png = client.post(
        "/v1/generate", json={"model": "digits", "n": 2, "format": "png"}, headers=h
    ).json()
    images = [Image.open(io.BytesIO(base64.b64decode(s))) for s in png["images"]]
    assert [im.size for im in images] == [(8, 8), (8, 8)]
    grid = client.post(
        "/v1/generate", json={"model": "digits", "n": 4, "format": "grid"}, headers=h
    )
    assert grid.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(grid.content)).size == (
        19,
        19,
    )  # 2x2 tiles of 8 + 3 pixels padding
    toy = client.post(
        "/v1/generate", json={"model": "ring", "n": 5, "format": "png"}, headers=h
    ).json()
    assert np.array(toy["data"]).shape == (5, 2)


def test_latent_then_decode_equals_generate(client, headers):
    h = headers["generate"]
    z = client.post("/v1/latent", json={"model": "digits", "n": 2, "seed": 3}, headers=h).json()[
        "z"
    ]
    decoded = client.post("/v1/decode", json={"model": "digits", "z": z}, headers=h).json()
    generated = client.post(
        "/v1/generate", json={"model": "digits", "n": 2, "seed": 3}, headers=h
    ).json()
    np.testing.assert_allclose(decoded["data"], generated["data"], atol=1e-5)


def test_validation_names_the_field(client, headers):
    h = headers["generate"]

    def loc(body, path="/v1/generate"):
        r = client.post(path, json=body, headers=h)
        assert r.status_code == 422, r.text
        return r.json()["detail"][0]["loc"]

    assert loc({"model": "digits", "n": 0}) == ["body", "n"]
    assert loc({"model": "digits", "n": 10_000}) == ["body", "n"]
    assert loc({"model": "digits", "seed": -1}) == ["body", "seed"]
    assert loc({"model": "digits", "truncation": 0}) == ["body", "truncation"]
    assert loc({"model": "digits", "labels": 3}) == ["body", "labels"]
    assert loc({"model": "digits", "colour": "red"}) == ["body", "colour"]
    assert loc({"model": "imp"}) == ["body", "model"]
    assert loc({"model": "digits", "z": [[0.0] * 3]}, "/v1/decode") == ["body", "z", 0]
    assert loc({"model": "digits", "z": [[1e6] * 16]}, "/v1/decode") == ["body", "z", 0]
    assert client.post("/v1/generate", json={"model": "nope"}, headers=h).status_code == 404
    bad_json = client.post(
        "/v1/generate", content=b"{", headers={**h, "content-type": "application/json"}
    )
    assert bad_json.status_code == 422


def test_impute_fills_nulls_and_validates(client, headers):
    h = headers["impute"]
    rows = [{"age": 30, "income": None, "city": "b"}, {"age": None, "city": None}]
    r = client.post("/v1/impute", json={"model": "imp", "rows": rows}, headers=h)
    assert r.status_code == 200, r.text
    first, second = r.json()["rows"]
    assert first["age"] == 30 and first["city"] == "b"  # observed values are kept
    assert 100 < first["income"] < 1000  # income ~ 10 x age, inside the fitted range
    assert 18 <= second["age"] <= 90 and second["age"] == round(second["age"])  # integer column
    assert second["city"] in ("a", "b") and second["income"] > 0
    direct = GANImputer.load(tabular_dirs()[0]).transform(
        pd.DataFrame(rows, columns=["age", "income", "city"])
    )
    assert r.json()["rows"][1]["income"] == pytest.approx(direct.loc[1, "income"])
    for row, where in [
        ({"age": "x"}, ["body", "rows", 0, "age"]),
        ({"city": "z"}, ["body", "rows", 0, "city"]),
        ({"height": 1}, ["body", "rows", 0, "height"]),
        ({"age": True}, ["body", "rows", 0, "age"]),
    ]:
        bad = client.post("/v1/impute", json={"model": "imp", "rows": [row]}, headers=h)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == where, bad.text
    assert (
        client.post("/v1/impute", json={"model": "digits", "rows": rows}, headers=h).status_code
        == 422
    )


def test_synthesize_is_seeded(client, headers):
    h = headers["synthesize"]
    a = client.post("/v1/synthesize", json={"model": "synth", "n": 4, "seed": 1}, headers=h).json()
    b = client.post("/v1/synthesize", json={"model": "synth", "n": 4, "seed": 1}, headers=h).json()
    assert a["rows"] == b["rows"] and len(a["rows"]) == 4
    assert set(a["rows"][0]) == {"age", "income", "city"}
    train = people()
    for row in a["rows"]:
        assert train["age"].min() <= row["age"] <= train["age"].max() and row["city"] in "ab"


def test_metrics_report_requests_batches_and_input_quality(client, headers):
    client.post("/v1/generate", json={"model": "digits", "n": 5}, headers=headers["generate"])
    rows = [{"age": 30, "income": None}, {"age": 150, "income": None, "city": "a"}]
    client.post("/v1/impute", json={"model": "imp", "rows": rows}, headers=headers["impute"])
    text = client.get("/metrics", headers=headers["admin"]).text
    assert 'gankit_requests_total{endpoint="/v1/generate",model="digits",status="200"} 1.0' in text
    assert (
        'gankit_request_latency_seconds_count{endpoint="/v1/generate",model="digits"} 1.0' in text
    )
    assert 'gankit_batch_size_sum{level="request",model="digits"} 5.0' in text
    assert 'gankit_input_missing_share{column="income",model="imp"} 1.0' in text
    assert 'gankit_input_missing_share{column="city",model="imp"} 0.5' in text
    assert 'gankit_input_out_of_range_total{column="age",model="imp"} 1.0' in text


def test_micro_batching_joins_concurrent_requests(model_dirs, keys, tmp_path):
    options = ServeOptions(keys=keys[0], batching=BatchConfig(max_batch=64, max_wait_ms=50))
    app = create_app([model_dirs["digits"]], options=options)
    h = {"X-API-Key": keys[1]["generate"]}

    async def run() -> list[dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            reqs = [
                c.post("/v1/generate", json={"model": "digits", "n": 2, "seed": s}, headers=h)
                for s in range(6)
            ]
            out = [r.json() for r in await asyncio.gather(*reqs)]
            metrics = (await c.get("/metrics", headers={"X-API-Key": keys[1]["admin"]})).text
            return out, metrics

    batched, metrics = asyncio.run(run())
    generator = load_generator(model_dirs["digits"])
    for seed, body in enumerate(batched):
        np.testing.assert_allclose(body["data"], generator.sample(2, seed=seed).numpy(), atol=1e-5)
    # 6 requests of 2 samples went through fewer than 6 model calls
    count = [
        ln
        for ln in metrics.splitlines()
        if ln.startswith('gankit_batch_size_count{level="model_call"')
    ]
    assert count and float(count[0].split()[-1]) < 6


def test_app_accepts_keys_from_environment(model_dirs, monkeypatch):
    monkeypatch.setenv("GANKIT_API_KEYS", "gk_ops_s3cret-value=generate+admin")
    app = create_app([model_dirs["ring"]], options=ServeOptions(keys=KeyStore.load()))
    from fastapi.testclient import TestClient

    c = TestClient(app)
    ok = c.post(
        "/v1/generate",
        json={"model": "ring"},
        headers={"Authorization": "Bearer gk_ops_s3cret-value"},
    )
    assert ok.status_code == 200
    assert (
        c.post(
            "/v1/generate", json={"model": "ring"}, headers={"X-API-Key": "gk_ops_wrong"}
        ).status_code
        == 401
    )


def test_micro_batching_auto_is_on_for_torch_generators_only(model_dirs, keys):
    dirs = [*model_dirs.values(), *tabular_dirs()]
    app = create_app(dirs, options=ServeOptions(keys=keys[0]))
    assert sorted(app.state.service.batchers) == ["digits", "ring"]
    off = create_app([model_dirs["ring"]], options=ServeOptions(keys=keys[0], batching=None))
    assert off.state.service.batchers == {}


def test_generate_by_rejection_matches_the_library(model_dirs, keys, tmp_path, headers, tiny):
    from .conftest import make_client

    dirs = {**model_dirs, "trained": tiny["trained"]}  # trained by gankit.train: has a critic
    req = {"model": "trained", "n": 50, "seed": 4, "rejection": True}
    with make_client(dirs, keys, tmp_path) as client:
        h = headers["generate"]
        first = client.post("/v1/generate", json=req, headers=h).json()
        assert first == client.post("/v1/generate", json=req, headers=h).json()
        expected = load_generator(tiny["trained"]).sample(50, seed=4, rejection=True).numpy()
        np.testing.assert_allclose(np.array(first["data"]), expected, atol=1e-6)
        refused = client.post(
            "/v1/generate", json={**req, "model": "ring"}, headers=h
        )  # random-weight fixture: no discriminator saved
        assert refused.status_code == 422 and "no discriminator" in refused.text
        both = client.post("/v1/generate", json={**req, "truncation": 1.0}, headers=h)
        assert both.status_code == 422 and "truncation" in both.text
        bad_q = client.post("/v1/generate", json={**req, "rejection_quantile": 0}, headers=h)
        assert bad_q.status_code == 422


def test_micro_batcher_restarts_after_a_lifespan_shutdown_on_the_same_loop(model_dirs, keys):
    """A lifespan shutdown stops the batch worker; a later request on the same event loop (a
    test client, an ASGI host that restarts the app) used to wait forever: it starts a new one."""
    app = create_app([model_dirs["ring"]], options=ServeOptions(keys=keys[0]))
    h = {"X-API-Key": keys[1]["generate"]}

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        codes = []
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for _ in range(2):
                async with app.router.lifespan_context(app):
                    request = c.post(
                        "/v1/decode", json={"model": "ring", "z": [[0.0, 0.0]]}, headers=h
                    )
                    codes.append((await asyncio.wait_for(request, 10)).status_code)
        return codes

    assert asyncio.run(run()) == [200, 200]
