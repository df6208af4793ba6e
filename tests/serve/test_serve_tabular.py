"""The real GAN imputer behind the service: dispatch on kind, /v1/impute, NDJSON streaming."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer

from gankit.serve import ServeOptions, create_app
from gankit.serve.stream import load_imputer, stream_impute


@pytest.fixture(scope="module")
def imputer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gankit.tabular import GANImputer

    x = load_breast_cancer(as_frame=True).data.iloc[:200, :4]
    x = x.mask(np.random.default_rng(0).random(x.shape) < 0.2)
    directory = tmp_path_factory.mktemp("imputer") / "bc"
    GANImputer(n_steps=20, random_state=0).fit(x).save(directory)
    return directory


ROWS = [
    {"mean radius": 14.0, "mean texture": None, "mean perimeter": 90.0, "mean area": None},
    {"mean radius": None, "mean texture": 20.0, "mean perimeter": None, "mean area": 600.0},
]


def _filled_ok(rows_in: list[dict], rows_out: list[dict]) -> None:
    for before, after in zip(rows_in, rows_out, strict=True):
        for column, value in before.items():
            if value is None:
                assert isinstance(after[column], float) and math.isfinite(after[column])
            else:
                assert after[column] == pytest.approx(value)


def test_imputer_directory_is_served_by_kind(imputer_dir, keys):
    app = create_app([imputer_dir], options=ServeOptions(keys=keys[0]))
    c = TestClient(app)
    info = c.get("/v1/models/bc", headers={"X-API-Key": keys[1]["impute"]}).json()
    assert info["kind"] == "imputer" and info["columns"][0]["name"] == "mean radius"
    r = c.post(
        "/v1/impute", json={"model": "bc", "rows": ROWS}, headers={"X-API-Key": keys[1]["impute"]}
    )
    assert r.status_code == 200, r.text
    _filled_ok(ROWS, r.json()["rows"])
    bad = c.post(
        "/v1/impute",
        json={"model": "bc", "rows": [{"mean area": "big"}]},
        headers={"X-API-Key": keys[1]["impute"]},
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == [
        "body",
        "rows",
        0,
        "mean area",
    ]


def test_stream_impute_writes_each_line_with_latency(imputer_dir):
    lines = [json.dumps(row) for row in ROWS] + [
        "",
        '{"mean radius": "x"}',
        "not json",
        json.dumps(ROWS[0]),
    ]
    sink = io.StringIO()
    summary = stream_impute(load_imputer(imputer_dir), io.StringIO("\n".join(lines) + "\n"), sink)
    out = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert len(out) == 5
    _filled_ok([ROWS[0], ROWS[1], ROWS[0]], [out[0], out[1], out[4]])
    assert out[2]["line"] == 3 and out[2]["error"][0]["loc"] == ["mean radius"]
    assert out[3]["line"] == 4 and "invalid JSON" in out[3]["error"][0]["msg"]
    assert summary["records"] == 3 and summary["errors"] == 2 and summary["p99_ms"] > 0


def test_stream_writes_before_the_input_ends(imputer_dir):
    """A live feed: the answer to line 1 is on stdout before line 2 is read."""
    model = load_imputer(imputer_dir)
    sink = io.StringIO()

    answered_before_read: list[int] = []

    class Feed(io.StringIO):
        def readline(self, *args):
            answered_before_read.append(sink.getvalue().count("\n"))
            return super().readline(*args)

    feed = Feed(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n")
    assert stream_impute(model, feed, sink)["records"] == 2
    assert answered_before_read == [0, 1, 2]  # each row answered before the next is read


def test_http_stream_endpoint(imputer_dir, keys):
    c = TestClient(create_app([imputer_dir], options=ServeOptions(keys=keys[0])))
    body = "\n".join(json.dumps(row) for row in ROWS) + "\n"
    with c.stream(
        "POST", "/v1/impute/stream?model=bc", content=body, headers={"X-API-Key": keys[1]["impute"]}
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        out = [json.loads(line) for line in r.iter_lines() if line]
    _filled_ok(ROWS, [o["row"] for o in out])
    assert all(o["latency_ms"] > 0 for o in out)
    denied = c.post(
        "/v1/impute/stream?model=bc", content=body, headers={"X-API-Key": keys[1]["generate"]}
    )
    assert denied.status_code == 403


def test_cli_impute_stream(imputer_dir):
    import subprocess
    import sys

    feed = "\n".join(json.dumps(row) for row in ROWS) + "\n"
    cmd = [sys.executable, "-m", "gankit.cli", "impute", "--model", str(imputer_dir), "--stream"]
    done = subprocess.run(cmd, input=feed, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _filled_ok(ROWS, [json.loads(line) for line in done.stdout.splitlines()])
    assert json.loads(done.stderr.strip().splitlines()[-1])["stream"]["records"] == 2
    missing = subprocess.run([*cmd[:4], "--stream"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--stream needs --model" in missing.stderr


def test_tabular_gan_directory_is_served(keys, tmp_path):
    import pandas as pd

    from gankit.tabular import TabularGAN

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "group": rng.choice(["a", "b"], 200)})
    TabularGAN(n_steps=5, batch_size=50, hidden=(16,), z_dim=8, random_state=0).fit(
        frame, discrete_columns=["group"]
    ).save(tmp_path / "tg")
    c = TestClient(create_app([tmp_path / "tg"], options=ServeOptions(keys=keys[0])))
    h = {"X-API-Key": keys[1]["synthesize"]}
    first = c.post("/v1/synthesize", json={"model": "tg", "n": 5, "seed": 3}, headers=h).json()
    again = c.post("/v1/synthesize", json={"model": "tg", "n": 5, "seed": 3}, headers=h).json()
    assert first["rows"] == again["rows"] and len(first["rows"]) == 5
    assert all(set(r) == {"x", "group"} and r["group"] in ("a", "b") for r in first["rows"])
    fixed = c.post(
        "/v1/synthesize",
        json={"model": "tg", "n": 6, "seed": 1, "conditions": {"group": "b"}},
        headers=h,
    ).json()
    assert [r["group"] for r in fixed["rows"]] == ["b"] * 6
    bad = c.post("/v1/synthesize", json={"model": "tg", "conditions": {"x": 1.0}}, headers=h)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "conditions", "x"]


def test_imputer_onnx_export_parity_and_serving(imputer_dir, keys, tmp_path):
    from gankit.export import export_model

    report = export_model(imputer_dir, tmp_path / "onnx", exporter="dynamo")
    assert report["parity_max_abs"] <= 1e-4
    c = TestClient(create_app([tmp_path / "onnx", imputer_dir], options=ServeOptions(keys=keys[0])))
    h = {"X-API-Key": keys[1]["impute"]}
    assert c.get("/v1/models/onnx", headers=h).json()["runtime"] == "onnx"
    assert c.get("/v1/models/bc", headers=h).json()["runtime"] == "torch"
    via_ort = c.post("/v1/impute", json={"model": "onnx", "rows": ROWS}, headers=h).json()["rows"]
    via_torch = c.post("/v1/impute", json={"model": "bc", "rows": ROWS}, headers=h).json()["rows"]
    for a, b in zip(via_ort, via_torch, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
