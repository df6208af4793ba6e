"""Security behaviours: keys and scopes, limits, audit log, tamper check, localhost-only no-auth."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gankit.errors import ConfigError
from gankit.modeldir import WEIGHTS_FILE
from gankit.serve import KeyStore, Limits, ServeOptions, add_key, create_app
from gankit.serve.auth import SCOPES


def test_no_key_is_401_wrong_scope_is_403_admin_is_allowed(client, headers):
    body = {"model": "ring", "n": 1}
    assert client.post("/v1/generate", json=body).status_code == 401
    assert client.post("/v1/generate", json=body).headers["www-authenticate"] == "ApiKey"
    bad = {"X-API-Key": headers["generate"]["X-API-Key"][:-2] + "xx"}
    assert client.post("/v1/generate", json=body, headers=bad).status_code == 401
    assert (
        client.post("/v1/generate", json=body, headers={"X-API-Key": "garbage"}).status_code == 401
    )
    assert client.post("/v1/generate", json=body, headers=headers["impute"]).status_code == 403
    assert client.post("/v1/generate", json=body, headers=headers["admin"]).status_code == 200
    assert (
        client.post(
            "/v1/impute", json={"model": "imp", "rows": [{}]}, headers=headers["generate"]
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/v1/synthesize", json={"model": "synth"}, headers=headers["impute"]
        ).status_code
        == 403
    )
    assert client.get("/metrics", headers=headers["generate"]).status_code == 403
    assert client.get("/metrics").status_code == 401
    assert client.get("/v1/models").status_code == 401


def test_key_file_stores_only_salted_hashes(tmp_path: Path):
    path = tmp_path / "keys.json"
    key_a = add_key(path, "alice", "generate,impute")
    key_b = add_key(path, "bob", ["admin"])
    text = path.read_text()
    assert key_a.split("_", 2)[2] not in text and key_b.split("_", 2)[2] not in text
    records = json.loads(text)["keys"]
    assert {r["id"] for r in records} == {"alice", "bob"}
    assert records[0]["salt"] != records[1]["salt"]
    assert path.stat().st_mode & 0o777 == 0o600
    store = KeyStore.load(path, env=False)
    assert store.verify(key_a).scopes == frozenset({"generate", "impute"})
    assert store.verify(key_b[:-1] + ("A" if key_b[-1] != "A" else "B")) is None
    with pytest.raises(ConfigError, match="already exists"):
        add_key(path, "alice", "generate")
    with pytest.raises(ConfigError, match="unknown scope"):
        add_key(path, "carol", "root")
    assert set(SCOPES) == {"generate", "impute", "synthesize", "admin"}


def test_deny_by_default_and_no_auth_only_on_localhost(model_dirs):
    with pytest.raises(ConfigError, match="no API keys"):
        create_app([model_dirs["ring"]], options=ServeOptions())
    with pytest.raises(ConfigError, match="only allowed on localhost"):
        create_app(
            [model_dirs["ring"]], options=ServeOptions(insecure_no_auth=True, host="0.0.0.0")
        )
    app = create_app(
        [model_dirs["ring"]], options=ServeOptions(insecure_no_auth=True, host="127.0.0.1")
    )
    assert TestClient(app).post("/v1/generate", json={"model": "ring"}).status_code == 200


def test_body_limit_413(client_with, headers):
    c = client_with(max_body_bytes=200)
    h = headers["impute"]
    big = {"model": "imp", "rows": [{"age": 1.0}] * 50}
    assert c.post("/v1/impute", json=big, headers=h).status_code == 413

    def chunks():  # no content-length: the streamed size is counted
        yield b'{"model": "imp", "rows": ['
        for _ in range(40):
            yield b'{"age": 1.0},'
        yield b'{"age": 1.0}]}'

    chunked = c.post(
        "/v1/impute", content=chunks(), headers={**h, "content-type": "application/json"}
    )
    assert chunked.status_code == 413
    assert (
        c.post("/v1/impute", json={"model": "imp", "rows": [{"age": 1.0}]}, headers=h).status_code
        == 200
    )


def test_rate_limit_429_is_per_key(client_with, headers):
    c = client_with(rate=0.5, burst=3)
    body = {"model": "ring"}
    codes = [
        c.post("/v1/generate", json=body, headers=headers["generate"]).status_code for _ in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    limited = c.post("/v1/generate", json=body, headers=headers["generate"])
    assert int(limited.headers["retry-after"]) >= 1
    assert c.post("/v1/generate", json=body, headers=headers["admin"]).status_code == 200


def test_timeout_504(client_with, headers):
    c = client_with(timeout_s=1e-6)
    slow = c.post("/v1/generate", json={"model": "digits", "n": 200}, headers=headers["generate"])
    assert slow.status_code == 504
    assert "timeout" in slow.json()["detail"]


def test_audit_log_has_who_what_status_and_no_secrets(client, headers, tmp_path):
    client.post(
        "/v1/generate", json={"model": "digits", "n": 3, "seed": 12345}, headers=headers["generate"]
    )
    client.post("/v1/generate", json={"model": "digits"}, headers=headers["impute"])
    client.post(
        "/v1/impute", json={"model": "imp", "rows": [{"age": 77.25}]}, headers=headers["impute"]
    )
    client.get("/healthz")
    text = (tmp_path / "audit.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(r["key_id"], r["endpoint"], r["model"], r["n"], r["status"]) for r in lines] == [
        ("generate", "/v1/generate", "digits", 3, 200),
        ("impute", "/v1/generate", None, None, 403),
        ("impute", "/v1/impute", "imp", 1, 200),
    ]
    assert all(
        set(r) == {"time", "key_id", "method", "endpoint", "model", "n", "status", "latency_ms"}
        for r in lines
    )
    for secret in [h["X-API-Key"] for h in headers.values()] + ["12345", "77.25"]:
        assert secret not in text


def test_tampered_model_is_refused_and_others_served(model_dirs, keys, tmp_path, caplog):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dirs["digits"], bad)
    data = bytearray((bad / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0x01
    (bad / WEIGHTS_FILE).write_bytes(bytes(data))
    options = ServeOptions(keys=keys[0], limits=Limits())
    with caplog.at_level(logging.ERROR, logger="gankit.serve"):
        app = create_app([bad, model_dirs["ring"]], options=options)
    assert any(
        "refusing to serve" in r.message and "SHA-256" in r.message and str(bad) in r.message
        for r in caplog.records
    )
    c = TestClient(app)
    listing = c.get("/v1/models", headers={"X-API-Key": keys[1]["generate"]}).json()
    assert [m["name"] for m in listing["models"]] == ["ring"]
    assert listing["refused"] == ["bad"] and listing.get("refused_details") is None
    assert str(tmp_path) not in c.get("/v1/models", headers={"X-API-Key": keys[1]["generate"]}).text
    admin = c.get("/v1/models", headers={"X-API-Key": keys[1]["admin"]}).json()
    assert "SHA-256" in admin["refused_details"][str(bad)]
    assert c.get("/readyz").json() == {"ready": True, "models": 1, "refused": 1}
    only_bad = TestClient(create_app([bad], options=options))
    assert only_bad.get("/readyz").status_code == 503


def test_audit_log_is_appended_never_rewritten(model_dirs, keys, tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier": "line"}\n')
    for _ in range(2):  # two service lifetimes on the same file
        options = ServeOptions(keys=keys[0], audit_log=path)
        with TestClient(create_app([model_dirs["ring"]], options=options)) as c:
            c.post(
                "/v1/generate", json={"model": "ring"}, headers={"X-API-Key": keys[1]["generate"]}
            )
    lines = path.read_text().splitlines()
    assert lines[0] == '{"earlier": "line"}' and len(lines) == 3


def test_cli_apikey_and_export(tmp_path, capsys, model_dirs):
    import shutil

    from gankit.cli import main

    assert main(["apikey", str(tmp_path / "keys.json"), "--id", "ops", "--scopes", "admin"]) == 0
    key = capsys.readouterr().out.strip()
    assert KeyStore.load(tmp_path / "keys.json", env=False).verify(key).key_id == "ops"
    assert main(["apikey", str(tmp_path / "keys.json"), "--id", "ops", "--scopes", "admin"]) == 2
    shutil.copytree(model_dirs["ring"], tmp_path / "ring")
    assert main(["export", str(tmp_path / "ring")]) == 0
    assert "parity_max_abs" in capsys.readouterr().out
    assert (
        json.loads((tmp_path / "ring" / "model.json").read_text())["onnx"]["file"] == "model.onnx"
    )
