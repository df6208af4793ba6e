"""Property-based fuzzing of the published OpenAPI schema with schemathesis: never a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, settings

from gankit.bench.serve import make_generator_dir
from gankit.serve import KeyStore, Limits, ServeOptions, create_app
from gankit.serve.auth import make_key

from .serve_helpers import tabular_models

_TMP = tempfile.TemporaryDirectory(prefix="gankit-fuzz-")  # removed when the process exits


def _app():
    root = Path(_TMP.name)
    digits = make_generator_dir(root / "digits", width=8, latent_dim=8)
    ring = make_generator_dir(root / "ring", family="mlp", shape=(2,), latent_dim=2, width=8)
    key, record = make_key("fuzz", ["admin"])
    options = ServeOptions(keys=KeyStore([record]), limits=Limits(max_n=64, max_rows=64))
    return create_app([digits, ring], options=options, models=tabular_models()), key


APP, KEY = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def test_schema_lists_model_names_and_security():
    published = APP.openapi()
    requests = published["components"]["schemas"]
    assert requests["GenerateRequest"]["properties"]["model"]["enum"] == ["digits", "ring"]
    assert requests["ImputeRequest"]["properties"]["model"]["enum"] == ["imp"]
    assert "APIKeyHeader" in published["components"]["securitySchemes"]


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case):
    response = case.call(headers={"X-API-Key": KEY})
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
