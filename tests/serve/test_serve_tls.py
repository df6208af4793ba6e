"""TLS: uvicorn serves the app with a self-signed certificate generated in the test."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gankit.serve import ServeOptions, create_app

from .serve_helpers import LiveServer


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A P-256 key and a one-day certificate for 127.0.0.1 / localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_serves_over_tls(model_dirs, keys, tmp_path):
    cert, key = self_signed(tmp_path)
    app = create_app([model_dirs["ring"]], options=ServeOptions(keys=keys[0]))
    with LiveServer(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as server:
        trust = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{server.port}"
        with httpx.Client(verify=trust, base_url=url) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            r = client.post(
                "/v1/generate",
                json={"model": "ring", "n": 2},
                headers={"X-API-Key": keys[1]["generate"]},
            )
            assert r.status_code == 200 and len(r.json()["data"]) == 2
            assert r.headers["strict-transport-security"] == "max-age=31536000"  # HSTS under TLS
            assert r.headers["x-content-type-options"] == "nosniff"
            assert (
                r.extensions["network_stream"]
                .get_extra_info("ssl_object")
                .version()
                .startswith("TLS")
            )
            assert client.post("/v1/generate", json={"model": "ring"}).status_code == 401
        with pytest.raises(httpx.ConnectError), httpx.Client(base_url=url) as untrusting:
            untrusting.get("/healthz")  # the self-signed certificate is not trusted by default
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)  # no plain HTTP


def test_cli_requires_both_tls_files(model_dirs, tmp_path):
    from gankit.errors import ConfigError
    from gankit.serve.app import serve

    with pytest.raises(ConfigError, match="both --ssl-certfile and --ssl-keyfile"):
        serve(
            [model_dirs["ring"]],
            ServeOptions(insecure_no_auth=True),
            ssl_certfile=str(tmp_path / "c.pem"),
        )
