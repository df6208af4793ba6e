"""The numeric /v1/impute path (serve/numeric.py): cross-request micro-batching gives the same
values as unbatched calls, the light row check is as strict as the full one, and the input
metrics and drift numbers match the per-request path they replace (issue 15)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from gankit.modeldir import read_spec
from gankit.serve import BatchConfig, Limits, ServeOptions, create_app
from gankit.serve.drift import DriftConfig, DriftMonitor
from gankit.serve.models import TabularModel
from gankit.tabular import GANImputer

from .serve_helpers import people

BATCHED = BatchConfig(max_batch=64, max_wait_ms=50)  # long wait: every request joins one call


@pytest.fixture(scope="module")
def numeric_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Imputers of age (integers) and income: "mean" (the mixture's conditional mean, fills
    rows independently), "posterior" (sample_posterior=True: seeded draws per call), and
    "mixed" (with the categorical column city: the pandas path)."""
    table = people(200)
    holed = table.mask(np.random.default_rng(1).random(table.shape) < 0.1)
    holed["age"] = holed["age"].astype("Int64")  # an integer column: answered as integers
    root = tmp_path_factory.mktemp("numeric")
    dirs = {
        name: GANImputer(n_steps=0, sample_posterior=name == "posterior", random_state=0)
        .fit(holed.drop(columns="city"))
        .save(root / name)
        for name in ("mean", "posterior")
    }
    dirs["mixed"] = GANImputer(n_steps=0, random_state=0).fit(holed).save(root / "mixed")
    return dirs


REQUESTS = [
    [{"age": 30, "income": None}],
    [{"age": None, "income": 555.5}, {"age": 70}],
    [{"income": 200.0}],
    [{"age": 45.0, "income": None}, {"age": None, "income": None}, {"age": 88, "income": 1.0}],
    [{"age": 19, "income": None}],
    [{"age": None, "income": 900}],
]


def _post_all(app: Any, model: str, key: str, requests: list, admin: str) -> tuple[list[dict], str]:
    """Send the requests concurrently; their bodies and the metrics text afterwards."""

    async def run() -> tuple[list[dict], str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            h = {"X-API-Key": key}
            calls = [
                c.post("/v1/impute", json={"model": model, "rows": r}, headers=h) for r in requests
            ]
            responses = await asyncio.gather(*calls)
            assert [r.status_code for r in responses] == [200] * len(requests)
            metrics = await c.get("/metrics", headers={"X-API-Key": admin})
            return [r.json() for r in responses], metrics.text

    return asyncio.run(run())


def _model_calls(metrics: str, model: str) -> float:
    prefix = f'gankit_batch_size_count{{level="model_call",model="{model}"}}'
    return float(next(ln for ln in metrics.splitlines() if ln.startswith(prefix)).split()[-1])


@pytest.mark.parametrize("model", ["mean", "posterior"])
def test_batched_responses_equal_unbatched(numeric_dirs, keys, model):
    """Six concurrent requests: fewer model calls than requests, and every response equal (to
    1e-6) to the same request served without batching, and to the library on those rows."""
    key, admin = keys[1]["impute"], keys[1]["admin"]
    apps = {
        mode: create_app(
            [numeric_dirs[model]], options=ServeOptions(keys=keys[0], batching=batching)
        )
        for mode, batching in (("batched", BATCHED), ("plain", None))
    }
    assert model in apps["batched"].state.service.batchers
    assert apps["plain"].state.service.batchers == {}
    batched, metrics = _post_all(apps["batched"], model, key, REQUESTS, admin)
    plain, _ = _post_all(apps["plain"], model, key, REQUESTS, admin)
    assert _model_calls(metrics, model) < len(REQUESTS)
    imputer = GANImputer.load(numeric_dirs[model])
    for request, one, other in zip(REQUESTS, batched, plain, strict=True):
        assert [list(r) for r in one["rows"]] == [["age", "income"]] * len(request)
        got = np.array([[r["age"], r["income"]] for r in one["rows"]], float)
        want = np.array([[r["age"], r["income"]] for r in other["rows"]], float)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert all(isinstance(r["age"], int) for r in one["rows"])  # Int64 column: integers
        given = [[r.get("age"), r.get("income")] for r in request]
        library = imputer.transform_numeric(np.array(given, dtype=float))
        np.testing.assert_allclose(got[:, 1], library[:, 1], rtol=0, atol=1e-6)
        for g, r in zip(got, request, strict=True):  # given values come back unchanged
            assert r.get("age") is None or g[0] == r["age"]
            assert r.get("income") is None or g[1] == r["income"]


def test_auto_batching_covers_numeric_imputers(numeric_dirs, keys):
    """Auto: numeric imputers get a batcher; an imputer with a categorical column does not."""
    dirs = [numeric_dirs["mean"], numeric_dirs["mixed"]]
    service = create_app(dirs, options=ServeOptions(keys=keys[0])).state.service
    assert sorted(service.batchers) == ["mean"] and sorted(service.numeric) == ["mean"]


BAD_CELLS = [
    ({"age": 30, "height": 2}, "height", "unknown column"),
    ({"age": "30"}, "age", "non-numeric value '30'"),
    ({"age": True}, "age", "non-numeric value bool"),
    ({"income": [1]}, "income", "non-numeric value list"),
    ({"age": 10**400}, "age", "number too large"),
    ({"age": float("nan")}, "age", "expected a finite number"),
    ({"income": float("-inf")}, "income", "expected a finite number"),
]


def test_light_check_refuses_what_the_full_check_refuses(numeric_dirs, keys):
    """Each bad cell (in the second row) is a 422 naming row 1 and its column, never a 500."""
    app = create_app([numeric_dirs["mean"]], options=ServeOptions(keys=keys[0]))
    headers = {"X-API-Key": keys[1]["impute"], "Content-Type": "application/json"}
    with TestClient(app) as c:
        for row, column, message in BAD_CELLS:
            body = json.dumps({"model": "mean", "rows": [{"age": 20, "income": 1.0}, row]})
            response = c.post("/v1/impute", content=body, headers=headers)
            assert response.status_code == 422, (row, response.text)
            detail = response.json()["detail"]
            assert [d["loc"] for d in detail] == [["body", "rows", 1, column]], row
            assert message in detail[0]["msg"], (row, detail)


def test_limits_still_apply(numeric_dirs, keys):
    limits = Limits(max_rows=3, max_body_bytes=2000)
    app = create_app([numeric_dirs["mean"]], options=ServeOptions(keys=keys[0], limits=limits))
    h = {"X-API-Key": keys[1]["impute"]}
    with TestClient(app) as c:
        many = c.post("/v1/impute", json={"model": "mean", "rows": [{"age": 1}] * 4}, headers=h)
        assert many.status_code == 422 and "must be <= 3" in many.text
        huge = c.post("/v1/impute", json={"model": "mean", "rows": [{"age": 1}] * 300}, headers=h)
        assert huge.status_code == 413
        empty = c.post("/v1/impute", json={"model": "mean", "rows": []}, headers=h)
        assert empty.status_code == 422


def test_input_metrics_and_drift_match_the_per_request_path(numeric_dirs, keys, caplog):
    """Counters of missing and out-of-range cells, and the quality report's PSI / KS, equal
    what the rows give when fed one frame at a time to a fresh monitor (the path before)."""
    config = DriftConfig(window=500, min_rows=50)
    options = ServeOptions(keys=keys[0], batching=BATCHED, drift=config)
    app = create_app([numeric_dirs["mean"]], options=options)
    shifted = people(120, seed=4).drop(columns="city")
    shifted["age"] = 60 + (shifted["age"] - 18) * 30 // 72  # training ages: 18-90
    rows = [
        {k: (None if i % 7 == j else v) for j, (k, v) in enumerate(r.items())}
        for i, r in enumerate(shifted.to_dict("records"))
    ]
    rows[0]["age"] = 500  # beyond the training range
    requests = [rows[i : i + 10] for i in range(0, len(rows), 10)]
    with caplog.at_level(logging.WARNING, logger="gankit.serve"):
        _, metrics = _post_all(app, "mean", keys[1]["impute"], requests, keys[1]["admin"])
    assert 'gankit_input_values_total{column="age",model="mean"} 120.0' in metrics
    missing = sum(r["age"] is None for r in rows)
    assert f'gankit_input_missing_total{{column="age",model="mean"}} {missing:.1f}' in metrics
    assert 'gankit_input_out_of_range_total{column="age",model="mean"} 1.0' in metrics
    assert 'gankit_drift_flagged{column="age",model="mean"} 1.0' in metrics  # scrape refreshes
    assert any("drift in model mean, column age" in r.message for r in caplog.records)

    served_model = app.state.service.models["mean"]
    reference = DriftMonitor("mean", served_model.schema, served_model.obj, config)
    for request in requests:  # as the old path: one frame per request (the order may differ)
        reference.observe(pd.DataFrame(request, columns=["age", "income"]).astype(float))
    with TestClient(app) as c:
        h = {"X-API-Key": keys[1]["impute"]}
        served = c.get("/v1/models/mean/quality", headers=h).json()["columns"]
    expected = reference.report()["columns"]
    for got, want in zip(served, expected, strict=True):
        assert got["n"] == want["n"] and got["drift"] == want["drift"]
        assert got["psi"] == pytest.approx(want["psi"], abs=1e-9)
        assert got["ks"] == pytest.approx(want["ks"], abs=1e-9)


def test_drift_statistics_are_recomputed_every_refresh_rows(numeric_dirs):
    """The window takes rows at once; statuses (gauges, warning) wait for `refresh_rows` rows
    or `refresh_s` seconds; a report is always current."""
    imputer, spec = GANImputer.load(numeric_dirs["mean"]), read_spec(numeric_dirs["mean"])
    model = TabularModel("mean", imputer, spec)
    config = DriftConfig(window=500, min_rows=5, refresh_rows=40, refresh_s=3600)
    monitor = DriftMonitor("mean", model.schema, model.obj, config)
    first = monitor.observe({"age": np.array([30.0] * 10), "income": np.array([300.0] * 10)})
    assert [c["n"] for c in first] == [10, 10]  # the first observation is always due
    stale = monitor.observe({"age": np.array([31.0] * 20), "income": np.full(20, np.nan)})
    assert [c["n"] for c in stale] == [10, 10]
    assert [c["n"] for c in monitor.report()["columns"]] == [30, 10]
    due = monitor.observe({"age": np.array([32.0] * 40), "income": np.array([1.0] * 40)})
    assert [c["n"] for c in due] == [70, 50]
