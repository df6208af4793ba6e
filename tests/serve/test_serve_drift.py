"""Drift monitoring in the service: PSI and KS of recent rows against the training reference,
the quality route, the Prometheus gauges and the warning (thresholds: PSI 0.2, KS/TV 0.2)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.stats import ks_2samp

from gankit.serve import ServeOptions, create_app
from gankit.serve.drift import DriftConfig, DriftMonitor, ks_statistic, psi
from gankit.tabular import GANImputer
from gankit.tabular.privacy import NearestRecords, distance_space
from gankit.tabular.transform import infer_schema

from .serve_helpers import people


@pytest.fixture(scope="module")
def imputer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An imputer (mixture only) fitted on 400 rows of `people`, 10 % of cells missing."""
    table = people(400)
    holed = table.mask(np.random.default_rng(1).random(table.shape) < 0.1)
    root = tmp_path_factory.mktemp("drift")
    return GANImputer(n_steps=0, random_state=0).fit(holed).save(root / "people")


def shifted(n: int, seed: int):
    """`people` aged 60-90 (the training ages are uniform on 18-90), income following."""
    rows = people(n, seed)
    rows["age"] = np.round(60 + (rows["age"] - 18) * 30 / 72)
    rows["income"] = rows["age"] * 10
    return rows


def test_statistics_match_hand_and_scipy_values():
    # (0.5 - 0.25) ln 2 + (0.5 - 0.75) ln(2/3) = 0.25 (ln 2 + ln 1.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(
        0.25 * (math.log(2) + math.log(1.5))
    )
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=70), rng.normal(0.3, 1, size=200)
    assert ks_statistic(a, np.sort(b)) == pytest.approx(ks_2samp(a, b).statistic)


def test_synthesizer_reference_is_its_training_rows():
    """A synthesizer's reference is its saved training rows (distance space, decoded): fresh
    rows of the same distribution pass, one city only is flagged on TV = 0.5."""
    train = people(400)
    schema = infer_schema(train, True, categorical=["city"])
    fake = SimpleNamespace(_records=NearestRecords(distance_space(schema, train)))
    monitor = DriftMonitor("synth", schema, fake, DriftConfig())
    assert monitor.source == "training rows"
    assert [c.reference.size for c in monitor.columns if c.numeric] == [400, 400]
    ok = {c["name"]: c for c in monitor.observe(people(300, seed=5))}
    assert not any(c["drift"] for c in ok.values()) and ok["age"]["psi"] < 0.1
    one_city = people(300, seed=6).assign(city="a")
    flagged = {
        c["name"]: c for c in DriftMonitor("s", schema, fake, DriftConfig()).observe(one_city)
    }
    assert flagged["city"]["drift"] and flagged["city"]["tv"] == pytest.approx(0.5, abs=0.06)
    assert not flagged["age"]["drift"]
    none = DriftMonitor("dp", schema, SimpleNamespace(), DriftConfig()).report()
    assert none["status"] == "no reference" and not none["monitored"]


def _client(imputer_dir: Path, keys) -> TestClient:
    options = ServeOptions(keys=keys[0], drift=DriftConfig(window=500, min_rows=50))
    return TestClient(create_app([imputer_dir], options=options))


def _impute(client: TestClient, rows, headers) -> None:
    holed = rows.astype(object).where(np.random.default_rng(2).random(rows.shape) > 0.1, None)
    body = {"model": "people", "rows": holed.to_dict("records")}
    assert client.post("/v1/impute", json=body, headers=headers).status_code == 200


def test_quality_route_flags_shifted_requests(imputer_dir, keys, headers, caplog):
    with _client(imputer_dir, keys) as client:
        url = "/v1/models/people/quality"
        assert client.get(url).status_code == 401  # deny by default
        assert client.get("/v1/models/nope/quality", headers=headers["impute"]).status_code == 404
        before = client.get(url, headers=headers["impute"]).json()
        assert before["status"] == "warming up" and before["monitored"]
        assert "mixture" in before["reference"]

        _impute(client, people(300, seed=3), headers["impute"])
        calm = client.get(url, headers=headers["impute"]).json()
        assert calm["status"] == "ok", calm
        assert all(c["psi"] < 0.2 and (c["ks"] or c["tv"]) < 0.2 for c in calm["columns"])

        with caplog.at_level(logging.WARNING, logger="gankit.serve"):
            _impute(client, shifted(400, seed=4), headers["impute"])
        drift = {c["name"]: c for c in client.get(url, headers=headers["impute"]).json()["columns"]}
        assert drift["age"]["drift"] and drift["age"]["psi"] > 0.5 and drift["age"]["ks"] > 0.3
        assert drift["income"]["drift"] and not drift["city"]["drift"]
        assert drift["age"]["n"] == 500  # the window keeps the last 500 observed values
        assert any("drift in model people, column age" in r.message for r in caplog.records)
        metrics = client.get("/metrics", headers=headers["admin"]).text
        assert 'gankit_drift_flagged{column="age",model="people"} 1.0' in metrics
        assert 'gankit_drift_flagged{column="city",model="people"} 0.0' in metrics
        assert 'gankit_drift_psi{column="age",model="people"}' in metrics


def test_serve_flags_set_the_monitor():
    from gankit.cli import build_parser
    from gankit.errors import ConfigError
    from gankit.serve.commands import _drift

    parser = build_parser("serve")
    args = parser.parse_args(["serve", "m", "--drift-window", "20", "--drift-psi", "0.3"])
    assert _drift(args) == DriftConfig(window=20, min_rows=20, psi_threshold=0.3)
    with pytest.raises(ConfigError, match="--drift-window"):
        _drift(parser.parse_args(["serve", "m", "--drift-window", "0"]))
