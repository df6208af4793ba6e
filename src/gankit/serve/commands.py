"""CLI: `gankit serve`, `gankit apikey` and `gankit export`."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the serve, apikey and export subcommands."""
    _register_serve(subparsers)
    _register_apikey(subparsers)
    _register_export(subparsers)


def _register_serve(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="serve models over HTTP (needs the serve extra)")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR", help="model or run directories")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-keys", metavar="FILE", help="key file written by `gankit apikey`")
    p.add_argument("--insecure-no-auth", action="store_true", help="no API keys (localhost only)")
    p.add_argument("--audit-log", metavar="FILE", default="gankit-audit.jsonl")
    p.add_argument("--max-n", type=int, default=256, help="most samples per request")
    p.add_argument("--max-rows", type=int, default=1024, help="most rows per request")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.add_argument(
        "--rate", type=float, default=50.0, help="requests/s per API key (default 50; 0: no limit)"
    )
    p.add_argument("--burst", type=int, default=100, help="burst size of the per-key rate limit")
    p.add_argument(
        "--address-rate",
        type=float,
        default=5.0,
        help="requests/s per client address without a valid key (open endpoints, 401s; "
        "default 5; 0: no limit)",
    )
    p.add_argument("--address-burst", type=int, default=20, help="burst of the per-address limit")
    p.add_argument(
        "--docs",
        action="store_true",
        help="serve /docs and /redoc (Swagger UI / ReDoc, loaded by the browser from a public "
        "CDN; relaxes the CSP on those two pages)",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds of model work per request")
    p.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnx", "onnx-int8"),
        default="auto",
        help="generators: auto = ONNX Runtime when `gankit export` recorded a model.onnx",
    )
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for the models")
    p.add_argument(
        "--micro-batch",
        default="auto",
        help="largest micro-batch (samples or rows) of concurrent generate and impute calls; "
        "0 = off; auto (default) = 64 for eager-torch generators and numeric imputers, off for "
        "generators under ONNX Runtime (where it measured no gain)",
    )
    p.add_argument("--batch-wait-ms", type=float, default=0.0, help="extra wait for company")
    p.add_argument(
        "--key-file",
        help="key of encrypted model directories (`gankit encrypt`; default $GANKIT_KEY or "
        "$GANKIT_KEY_FILE); they are decrypted in memory only",
    )
    p.add_argument(
        "--drift-window", type=int, default=500, help="values per column in the drift window"
    )
    p.add_argument(
        "--drift-psi", type=float, default=0.2, help="PSI at which a column counts as drifted"
    )
    p.add_argument(
        "--drift-ks", type=float, default=0.2, help="KS (numbers) / TV (categories) threshold"
    )
    p.add_argument("--ssl-certfile")
    p.add_argument("--ssl-keyfile")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from gankit.serve.app import ServeOptions, serve
    from gankit.serve.auth import KeyStore
    from gankit.serve.limits import Limits

    limits = Limits(
        max_n=args.max_n,
        max_rows=args.max_rows,
        max_body_bytes=args.max_body_bytes,
        rate=args.rate,
        burst=args.burst,
        timeout_s=args.timeout,
        address_rate=args.address_rate,
        address_burst=args.address_burst,
    )
    options = ServeOptions(
        keys=None if args.insecure_no_auth else KeyStore.load(args.api_keys),
        insecure_no_auth=args.insecure_no_auth,
        limits=limits,
        audit_log=args.audit_log or None,
        runtime=args.runtime,
        threads=args.threads,
        batching=_batching(args.micro_batch, args.batch_wait_ms),
        host=args.host,
        docs=args.docs,
        encryption_key=_encryption_key(args.key_file),
        drift=_drift(args),
    )
    if options.keys is not None and len(options.keys) == 0:
        from gankit.errors import ConfigError

        raise ConfigError(
            "no API keys: pass --api-keys FILE (see `gankit apikey`) or set GANKIT_API_KEYS"
        )
    serve(args.model_dirs, options, args.port, args.ssl_certfile, args.ssl_keyfile, args.log_level)
    return 0


def _drift(args: argparse.Namespace) -> Any:
    from gankit.errors import ConfigError
    from gankit.serve.drift import DriftConfig

    if args.drift_window < 1 or args.drift_psi <= 0 or args.drift_ks <= 0:
        raise ConfigError("--drift-window must be >= 1 and --drift-psi, --drift-ks > 0")
    return DriftConfig(
        window=args.drift_window,
        min_rows=min(50, args.drift_window),
        psi_threshold=args.drift_psi,
        ks_threshold=args.drift_ks,
    )


def _encryption_key(key_file: str | None) -> bytes | None:
    if not key_file:
        return None
    from gankit.crypto import read_key_file

    return read_key_file(key_file)


def _batching(value: str, wait_ms: float) -> Any:
    from gankit.errors import ConfigError
    from gankit.serve.batching import BatchConfig

    if value == "auto":
        return "auto"
    try:
        size = int(value)
    except ValueError as exc:
        raise ConfigError(f"--micro-batch must be 'auto' or an integer, got {value!r}") from exc
    return BatchConfig(size, wait_ms) if size > 0 else None


def _register_apikey(subparsers: Any) -> None:
    p = subparsers.add_parser("apikey", help="create an API key for `gankit serve`")
    p.add_argument("file", help="key file (created if absent; stores salted hashes only)")
    p.add_argument("--id", required=True, help="key id shown in the audit log")
    p.add_argument(
        "--scopes", required=True, help="comma-separated: generate,impute,synthesize,admin"
    )
    p.set_defaults(handler=_apikey)


def _apikey(args: argparse.Namespace) -> int:
    from gankit.serve.auth import add_key

    print(add_key(args.file, args.id, args.scopes))
    return 0


def _register_export(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX; quantize or prune it")
    p.add_argument("model_dir", metavar="MODEL_DIR")
    p.add_argument("--out", help="output model directory (default: add model.onnx in place)")
    p.add_argument("--quantize", action="store_true", help="also write an int8 model.int8.onnx")
    p.add_argument(
        "--prune",
        type=float,
        default=0.0,
        metavar="AMOUNT",
        help="magnitude-prune this share of weights before export (0-1)",
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="instead: measure size/speed/quality of fp32, int8 and pruned variants into FILE",
    )
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    if args.report:
        return _export_report(args)
    from gankit.export import export_model

    report = export_model(args.model_dir, args.out, quantize=args.quantize, prune=args.prune)
    for key, value in report.items():
        print(f"{key}: {value}")
    return 0


def _export_report(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from gankit.export import compression_report
    from gankit.modeldir import atomic_write_json

    with tempfile.TemporaryDirectory(prefix="gankit-export-") as work:
        report = compression_report(args.model_dir, work)
    atomic_write_json(args.report, report)
    print(json.dumps(report, indent=1))
    return 0
