"""Issue 11 hardening: non-finite JSON numbers, strict types, security headers, /docs, rate
limits per key and per address, refused models by name, one schema and one row check."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from gankit.errors import CheckpointError, DataError
from gankit.serve import Limits, ServeOptions, create_app
from gankit.serve.models import TabularModel, columns_from_schema
from gankit.tabular import GANImputer
from gankit.tabular.transform import TableSchema, validate_rows

from .serve_helpers import LiveServer

JSON = {"content-type": "application/json"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]
FIELDS = [  # (path, scope, body with %s for the number, where the 422 must point)
    ("/v1/impute", "impute", '{"model": "imp", "rows": [{"age": %s}]}', ["body", "rows", 0, "age"]),
    (
        "/v1/impute",
        "impute",
        '{"model": "ids", "rows": [{"name": %s}]}',
        ["body", "rows", 0, "name"],
    ),
    ("/v1/generate", "generate", '{"model": "digits", "truncation": %s}', ["body", "truncation"]),
    ("/v1/latent", "generate", '{"model": "digits", "truncation": %s}', ["body", "truncation"]),
    ("/v1/decode", "generate", '{"model": "ring", "z": [[0.5, %s]]}', ["body", "z", 0, 1]),
    (
        "/v1/synthesize",
        "synthesize",
        '{"model": "synth", "conditions": {"city": %s}}',
        ["body", "conditions", "city"],
    ),
]


@pytest.fixture
def tiny_client(model_dirs, keys, tmp_path, tiny):
    options = ServeOptions(keys=keys[0], audit_log=tmp_path / "audit.jsonl")
    dirs = [*model_dirs.values(), tiny["imp"], tiny["synth"], tiny["ids"], tiny["synth-ids"]]
    with TestClient(create_app(dirs, options=options), raise_server_exceptions=False) as c:
        yield c


# ----------------------------------------------------------------- item 7: NaN / Infinity


@pytest.mark.parametrize("token", NON_FINITE)
@pytest.mark.parametrize(("path", "scope", "body", "loc"), FIELDS)
def test_non_finite_numbers_get_a_422_naming_the_field(
    tiny_client, headers, token, path, scope, body, loc
):
    r = tiny_client.post(path, content=(body % token).encode(), headers={**headers[scope], **JSON})
    assert r.status_code == 422, r.text
    detail = json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    assert loc in [e["loc"] for e in detail["detail"]]


def test_non_finite_number_keeps_the_connection_alive(model_dirs, keys, tiny):
    app = create_app([model_dirs["digits"], tiny["imp"]], options=ServeOptions(keys=keys[0]))
    h = {"X-API-Key": keys[1]["admin"], **JSON}
    with LiveServer(app) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as c:
        bad = c.post("/v1/impute", content=b'{"model": "imp", "rows": [{"age": NaN}]}', headers=h)
        assert bad.status_code == 422 and bad.headers.get("connection") != "close"
        assert bad.json()["detail"][0]["loc"] == ["body", "rows", 0, "age"]
        again = c.post(
            "/v1/generate", content=b'{"model": "digits", "truncation": 1e999}', headers=h
        )
        assert again.status_code == 422 and again.json()["detail"][0]["input"] == "Infinity"
        assert c.post("/v1/generate", json={"model": "digits"}, headers=h).status_code == 200


# ----------------------------------------------------------------- item 10: strict types


@pytest.mark.parametrize(
    ("path", "scope", "body", "loc"),
    [
        ("/v1/generate", "generate", {"model": "ring", "n": "5"}, ["body", "n"]),
        ("/v1/generate", "generate", {"model": "ring", "n": True}, ["body", "n"]),
        ("/v1/generate", "generate", {"model": "ring", "n": 2.5}, ["body", "n"]),
        ("/v1/generate", "generate", {"model": "ring", "seed": "7"}, ["body", "seed"]),
        (
            "/v1/generate",
            "generate",
            {"model": "ring", "truncation": "1.5"},
            ["body", "truncation"],
        ),
        ("/v1/generate", "generate", {"model": "ring", "rejection": "yes"}, ["body", "rejection"]),
        ("/v1/generate", "generate", {"model": 7}, ["body", "model"]),
        ("/v1/latent", "generate", {"model": "ring", "n": "2"}, ["body", "n"]),
        ("/v1/decode", "generate", {"model": "ring", "z": [["0.5", 0.1]]}, ["body", "z", 0, 0]),
        ("/v1/decode", "generate", {"model": "ring", "z": [[True, 0.1]]}, ["body", "z", 0, 0]),
        ("/v1/synthesize", "synthesize", {"model": "synth", "n": "3"}, ["body", "n"]),
        (
            "/v1/impute",
            "impute",
            {"model": "imp", "rows": [{"age": "30"}]},
            ["body", "rows", 0, "age"],
        ),
        (
            "/v1/impute",
            "impute",
            {"model": "imp", "rows": [{"income": True}]},
            ["body", "rows", 0, "income"],
        ),
        (
            "/v1/impute",
            "impute",
            {"model": "imp", "rows": [{"city": ["a"]}]},
            ["body", "rows", 0, "city"],
        ),
        (
            "/v1/impute",
            "impute",
            {"model": "imp", "rows": [{"age": 10**400}]},
            ["body", "rows", 0, "age"],
        ),
    ],
)
def test_numbers_are_numbers(tiny_client, headers, path, scope, body, loc):
    r = tiny_client.post(path, content=_dumps(body), headers={**headers[scope], **JSON})
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["detail"]]


def _dumps(body) -> bytes:
    import sys

    sys.set_int_max_str_digits(0)  # 10**400 as a JSON integer
    return json.dumps(body).encode()


def test_integers_are_numbers_where_floats_are_expected(tiny_client, headers):
    h = headers["generate"]
    assert (
        tiny_client.post(
            "/v1/generate", json={"model": "ring", "truncation": 2}, headers=h
        ).status_code
        == 200
    )
    r = tiny_client.post("/v1/decode", json={"model": "ring", "z": [[1, 0]]}, headers=h)
    assert r.status_code == 200


# ----------------------------------------------------------------- item 8: headers, /docs


def test_security_headers_on_every_response(client_with, headers):
    c = client_with(max_body_bytes=300)
    admin = headers["admin"]
    responses = {
        "page": c.get("/"),
        "static": c.get("/static/app.js"),
        "healthz": c.get("/healthz"),
        "openapi": c.get("/openapi.json"),
        "models": c.get("/v1/models", headers=admin),
        "png": c.post("/v1/generate", json={"model": "digits", "format": "grid"}, headers=admin),
        "401": c.post("/v1/generate", json={"model": "ring"}),
        "403": c.get("/metrics", headers=headers["generate"]),
        "404": c.get("/v1/models/nope", headers=admin),
        "422": c.post("/v1/generate", json={"model": "ring", "n": 0}, headers=admin),
        "413": c.post(
            "/v1/impute", json={"model": "imp", "rows": [{"age": 1}] * 50}, headers=admin
        ),
        "no route": c.get("/nope"),
    }
    expected = {"200": ["page", "static", "healthz", "openapi", "models", "png"]}
    for name in expected["200"]:
        assert responses[name].status_code == 200, name
    for name, r in responses.items():
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["referrer-policy"] == "no-referrer", name
        assert r.headers["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], name
        assert "strict-transport-security" not in r.headers, name  # plain HTTP: no HSTS
        assert r.headers["cache-control"] == ("no-cache" if name == "static" else "no-store"), name
    assert responses["page"].headers["content-security-policy"].startswith("default-src 'self'")
    for name in ("models", "png", "401", "422", "413"):
        assert responses[name].headers["content-security-policy"].startswith("default-src 'none'")


def test_docs_are_off_by_default_and_on_with_the_flag(client_with, headers):
    off = client_with()
    assert off.get("/docs").status_code == 404 and off.get("/redoc").status_code == 404
    assert off.get("/openapi.json").status_code == 200  # the schema itself stays published
    on = client_with(docs=True)
    page = on.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert "https://cdn.jsdelivr.net" in page.headers["content-security-policy"]
    assert "cdn.jsdelivr.net" not in on.get("/healthz").headers["content-security-policy"]


def test_cli_docs_flag_and_rate_defaults():
    from gankit.cli import build_parser

    args = build_parser("serve").parse_args(["serve", "m"])
    assert (args.docs, args.rate, args.burst, args.address_rate, args.address_burst) == (
        False,
        50.0,
        100,
        5.0,
        20,
    )
    assert build_parser("serve").parse_args(["serve", "m", "--docs"]).docs is True
    limits = Limits()
    assert (limits.rate, limits.burst, limits.address_rate, limits.address_burst) == (
        50,
        100,
        5,
        20,
    )


# ----------------------------------------------------------------- item 9: rate limits


def test_requests_without_a_valid_key_are_limited_per_address(client_with, headers, model_dirs):
    c = client_with(address_rate=0.5, address_burst=2)
    body = {"model": "ring"}
    codes = [c.post("/v1/generate", json=body).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    wrong = c.post("/v1/generate", json=body, headers={"X-API-Key": "gk_generate_wrong"})
    assert wrong.status_code == 429 and int(wrong.headers["retry-after"]) >= 1
    assert c.get("/healthz").status_code == 429  # the open endpoints share the address bucket
    assert c.post("/v1/generate", json=body, headers=headers["generate"]).status_code == 200

    async def elsewhere() -> int:  # another client address has its own bucket
        transport = httpx.ASGITransport(app=c.app, client=("10.0.0.2", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as other:
            return (await other.get("/healthz")).status_code

    import asyncio

    assert asyncio.run(elsewhere()) == 200


def test_default_key_rate_limits_a_flood(client_with, headers):
    c = client_with(rate=1, burst=3)  # the default is 50/s with bursts of 100: same mechanism
    codes = [c.get("/v1/models", headers=headers["generate"]).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_no_auth_mode_limits_per_address(model_dirs):
    limits = Limits(rate=0.5, burst=1)
    app = create_app(
        [model_dirs["ring"]], options=ServeOptions(insecure_no_auth=True, limits=limits)
    )
    c = TestClient(app)
    assert [c.post("/v1/generate", json={"model": "ring"}).status_code for _ in range(2)] == [
        200,
        429,
    ]


# ----------------------------------------------------------------- item 11: refused dirs


def test_model_list_shows_refused_names_details_only_to_admin(model_dirs, keys, tmp_path):
    bad = tmp_path / "secret-place" / "broken"
    bad.mkdir(parents=True)
    (bad / "model.json").write_text("{}")
    c = TestClient(create_app([bad, model_dirs["ring"]], options=ServeOptions(keys=keys[0])))
    for scope in ("generate", "impute", "synthesize"):
        r = c.get("/v1/models", headers={"X-API-Key": keys[1][scope]})
        assert r.json()["refused"] == ["broken"] and r.json()["refused_details"] is None
        assert "secret-place" not in r.text and str(tmp_path) not in r.text
    admin = c.get("/v1/models", headers={"X-API-Key": keys[1]["admin"]}).json()
    assert list(admin["refused_details"]) == [str(bad)]


# ------------------------------------------------- item 16 + issue 10 item 6: one schema


ALIASES = [
    {"columns": [{"name": "age", "type": "numeric", "min": 0.0, "max": 100.0}]},
    {"columns": {"age": {"kind": "continuous", "min": 0.0, "max": 1.0}}},
    [{"name": "age", "kind": "continuous", "dtype": "float64", "min": 0.0, "max": 1.0}],
    {
        "frame": True,
        "columns": [{"name": "c", "kind": "categorical", "dtype": "object", "values": ["a"]}],
    },
    {
        "frame": True,
        "columns": [
            {"name": "a", "kind": "numeric", "dtype": "f", "min": 0, "max": 1, "categories": []}
        ],
    },
]


@pytest.mark.parametrize("schema", ALIASES)
def test_serve_accepts_only_the_schema_gankit_writes(schema):
    with pytest.raises(CheckpointError, match="schema"):
        TabularModel("x", object(), {"kind": "imputer", "schema": schema})
    with pytest.raises(CheckpointError, match="schema"):
        columns_from_schema(schema, "x/model.json")


def test_service_and_estimator_share_one_row_check(tiny_client, headers, tiny):
    imputer = GANImputer.load(tiny["imp"])
    rows = [{"age": 30.0, "city": "a"}, {"age": 40.0, "city": "zzz"}]
    r = tiny_client.post(
        "/v1/impute", json={"model": "imp", "rows": rows}, headers=headers["impute"]
    )
    (error,) = r.json()["detail"]
    (expected,) = validate_rows(rows, imputer.schema_)
    assert error["loc"] == ["body", "rows", expected.row, expected.column]
    assert error["msg"] == expected.message
    with pytest.raises(DataError) as raised:  # the estimator's own input check: same words
        imputer.transform(pd.DataFrame(rows, columns=["age", "income", "city"]))
    assert str(raised.value) == str(expected) == f"row 1, column 'city': {expected.message}"
    served = TableSchema.from_dict(json.loads((tiny["imp"] / "model.json").read_text())["schema"])
    assert served == imputer.schema_


def test_identifier_columns_through_the_service(tiny_client, headers):
    rows = [{"name": "person-007", "age": None, "income": 400.0, "city": "b"}, {"age": 50.0}]
    r = tiny_client.post(
        "/v1/impute", json={"model": "ids", "rows": rows}, headers=headers["impute"]
    )
    assert r.status_code == 200, r.text
    out = r.json()["rows"]
    assert out[0]["name"] == "person-007" and out[1]["name"] is None  # passed through untouched
    assert list(out[0]) == ["age", "income", "city", "name"] and out[0]["age"] is not None
    info = tiny_client.get("/v1/models/ids", headers=headers["impute"]).json()
    assert info["identifiers"] == ["name"] and [c["name"] for c in info["columns"]] == [
        "age",
        "income",
        "city",
    ]
    s = tiny_client.post(
        "/v1/synthesize",
        json={"model": "synth-ids", "n": 30, "seed": 1},
        headers=headers["synthesize"],
    )
    names = [row["name"] for row in s.json()["rows"]]
    assert len(set(names)) == 30 and all(n.startswith("synthetic-") for n in names)
    assert not {f"person-{i:03d}" for i in range(48)} & set(names)
