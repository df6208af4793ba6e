"""The FastAPI app factory of `gankit serve`.

Deny by default: every `/v1` call needs an API key with the right scope (401 without a key, 403
with the wrong scope, 429 over the per-key rate), bodies are size-limited (413), inputs are
validated against the model (422 naming the field), model work is time-limited (504), and every
request leaves an audit line and Prometheus metrics. Only `/healthz`, `/readyz`, the OpenAPI
schema and the static page at `/` are open, under a per-address rate limit (as are requests
with a missing or wrong key). Every response carries the security headers of `headers.py`;
`/docs` and `/redoc` (Swagger UI / ReDoc from a CDN) are off unless `docs=True`. Every status
code a route can answer is documented in the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from gankit.errors import ConfigError, DataError, GankitError
from gankit.registry import KINDS
from gankit.serve.audit import AuditLog, ObserverMiddleware
from gankit.serve.auth import SCOPES, KeyStore, Principal
from gankit.serve.batching import BatchConfig, MicroBatcher, generator_batcher
from gankit.serve.drift import DriftConfig, build_monitors, not_monitored
from gankit.serve.headers import SecurityHeadersMiddleware
from gankit.serve.limits import (
    AddressRateLimitMiddleware,
    BodySizeLimitMiddleware,
    Limits,
    RateLimiter,
    client_address,
    too_many,
)
from gankit.serve.metrics import ServeMetrics
from gankit.serve.models import (
    GeneratorModel,
    LoadOptions,
    ServedModel,
    TabularModel,
    TranslatorModel,
    load_models,
)
from gankit.serve.numeric import NumericImputer, serves
from gankit.serve.schemas import (
    DecodeRequest,
    EncodeRequest,
    EncodeResponse,
    ErrorResponse,
    GenerateRequest,
    ImputeRequest,
    LatentRequest,
    LatentResponse,
    ModelInfo,
    ModelList,
    QualityReport,
    ReadyResponse,
    RowsResponse,
    SamplesResponse,
    SynthesizeRequest,
    TranslateRequest,
    TranslateResponse,
    ValidationErrorResponse,
)

log = logging.getLogger("gankit.serve")
STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
Z_LIMIT = 100.0
INLINE_MAX_SAMPLES = 8  # smaller calls run on the event loop; a thread hop costs more than them

# What each status code means, for the OpenAPI schema (`documented`).
ERRORS: dict[int, str] = {
    400: "The body could not be read (not UTF-8 encoded JSON).",
    401: "Missing or invalid API key.",
    403: "The API key lacks the scope this route needs.",
    404: "No served model of that name.",
    413: "The request body exceeds the server's limit.",
    422: "Invalid request; each problem names its field (`loc`).",
    429: "Rate limit exceeded (per key, or per address without a valid key); see Retry-After.",
    504: "The model work exceeded the server's timeout.",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry of a route that can answer `codes` (besides 200)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        model = ValidationErrorResponse if code == 422 else ErrorResponse
        out[code] = {"model": model, "description": ERRORS[code]}
    return out


AUTH = (401, 403, 429)


@dataclass
class ServeOptions:
    """Everything `create_app` needs besides the models."""

    keys: KeyStore | None = None
    insecure_no_auth: bool = False
    limits: Limits = field(default_factory=Limits)
    audit_log: str | Path | None = None
    runtime: str = "auto"
    threads: int = 1
    batching: BatchConfig | str | None = "auto"
    host: str = "127.0.0.1"
    docs: bool = False  # /docs and /redoc: Swagger UI / ReDoc, loaded from a public CDN
    encryption_key: bytes | None = None  # opens encrypted model directories (gankit.crypto)
    drift: DriftConfig = field(default_factory=DriftConfig)  # window and thresholds (drift.py)


def _validation(loc: Sequence[Any], msg: str) -> RequestValidationError:
    return RequestValidationError([{"loc": list(loc), "msg": msg, "type": "value_error"}])


def batch_config(batching: BatchConfig | str | None, model: ServedModel) -> BatchConfig | None:
    """Micro-batching per model: "auto" = on (no wait) for eager-torch generators and for
    numeric imputers (serve/numeric.py); a BatchConfig applies to both."""
    numeric = serves(model)
    if not (isinstance(model, GeneratorModel) or numeric) or batching is None:
        return None
    if batching == "auto":
        auto = numeric or model.runtime == "torch"
        return BatchConfig(max_batch=64, max_wait_ms=0.0) if auto else None
    if not isinstance(batching, BatchConfig):
        raise ConfigError(f"batching must be 'auto', None or a BatchConfig, got {batching!r}")
    return batching


def check_options(options: ServeOptions) -> None:
    """Deny by default: keys are required unless no-auth is asked for on a loopback host."""
    if options.keys is None and not options.insecure_no_auth:
        raise ConfigError("no API keys configured; pass --api-keys FILE or set GANKIT_API_KEYS")
    if options.insecure_no_auth and options.host not in LOOPBACK:
        raise ConfigError(
            f"--insecure-no-auth is only allowed on localhost, not on host {options.host!r}"
        )


class Service:
    """The state behind the routes: models, keys, limits, metrics, audit, batchers."""

    def __init__(
        self, models: dict[str, ServedModel], refused: dict[str, str], options: ServeOptions
    ):
        check_options(options)
        self.models, self.refused, self.options = models, refused, options
        self.limits = options.limits
        self.metrics = ServeMetrics()
        self.audit = AuditLog(options.audit_log) if options.audit_log else None
        self.rate = RateLimiter(self.limits.rate, self.limits.burst)
        self.address_rate = RateLimiter(self.limits.address_rate, self.limits.address_burst)
        self.drift = build_monitors(models, options.drift)  # tabular models only
        self.batchers: dict[str, MicroBatcher] = {}
        self.numeric: dict[str, NumericImputer] = {}  # the pandas-free impute path
        for model in models.values():
            if isinstance(model, TabularModel) and serves(model):
                fast = NumericImputer(model, self.metrics, self.drift.get(model.name))
                self.numeric[model.name] = fast
            config = batch_config(options.batching, model)
            if config is not None and isinstance(model, GeneratorModel):
                self.batchers[model.name] = generator_batcher(model, config, self.metrics)
            elif config is not None and model.name in self.numeric:
                run = self.numeric[model.name].run
                self.batchers[model.name] = MicroBatcher(model.name, run, config, self.metrics)

    # ------------------------------------------------------------------ auth

    def principal(self, request: Request, key: str | None, scope: str) -> Principal:
        """Authenticate and authorise one request (401/403/429); sets the audit key id."""
        who = self.authenticate(request, key)
        self.authorize(who, scope, request)
        return who

    def authenticate(self, request: Request, key: str | None) -> Principal:
        """Who sent the X-API-Key (or Bearer) key (401 if nobody); sets the audit key id."""
        if self.options.insecure_no_auth:  # no keys: each address gets a key's rate
            who = Principal("anonymous", frozenset({"admin"}))
            request.state.bucket = f"anonymous@{client_address(request.scope)}"
        else:
            who = self._verify(request, key)
        request.state.key_id = who.key_id
        return who

    def _verify(self, request: Request, key: str | None) -> Principal:
        if key is None:
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        found = self.options.keys.verify(key) if self.options.keys is not None else None
        if found is None:  # no valid key: the per-address limit applies
            wait = self.address_rate.acquire(client_address(request.scope))
            if wait > 0:
                raise too_many(wait)
            raise HTTPException(401, "missing or invalid API key", {"WWW-Authenticate": "ApiKey"})
        return found

    def authorize(self, who: Principal, scope: str, request: Request | None = None) -> None:
        """403 unless `who` has `scope`; 429 when its key is over the rate."""
        if not who.allows(scope):
            raise HTTPException(403, f"API key {who.key_id!r} lacks the {scope!r} scope")
        bucket = getattr(request.state, "bucket", None) if request is not None else None
        wait = self.rate.acquire(bucket or who.key_id)
        if wait > 0:
            raise too_many(wait)

    # ------------------------------------------------------------------ models

    def model(self, request: Request, name: str, kinds: Sequence[str]) -> ServedModel:
        """The named model if it has one of `kinds` (404 unknown, 422 wrong kind)."""
        model = self.models.get(name)
        if model is None:
            raise HTTPException(404, f"no model named {name!r}; GET /v1/models lists them")
        request.state.model = model.name
        if model.kind not in kinds:
            raise _validation(
                ("body", "model"),
                f"model {name!r} is a {model.kind}; this endpoint needs {list(kinds)}",
            )
        return model

    def generator(self, request: Request, name: str) -> GeneratorModel:
        """The named image or toy generator (404/422 as `model`)."""
        model = self.model(request, name, REQUEST_KINDS["GenerateRequest"])
        assert isinstance(model, GeneratorModel)
        return model

    def tabular(self, request: Request, name: str, schema: str) -> TabularModel:
        """The named table model that answers request `schema` (404/422 as `model`)."""
        model = self.model(request, name, REQUEST_KINDS[schema])
        assert isinstance(model, TabularModel)
        return model

    def check_n(self, request: Request, n: int, name: str = "n", limit: int | None = None) -> None:
        """422 when a count exceeds the configured maximum."""
        limit = limit or self.limits.max_n
        request.state.n = n
        if n > limit:
            raise _validation(("body", name), f"must be <= {limit} (the server's limit), got {n}")

    async def run(self, fn: Callable[..., Any], *args: Any, inline: bool = False) -> Any:
        """Run model work inline (tiny calls) or in a worker thread under the request timeout."""
        if inline:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await self.within_timeout(loop.run_in_executor(None, fn, *args))

    async def within_timeout(self, work: Awaitable[Any]) -> Any:
        """Await model work; 504 when it outlasts the request timeout."""
        try:
            return await asyncio.wait_for(work, self.limits.timeout_s)
        except TimeoutError as exc:
            raise HTTPException(
                504, f"model work exceeded the {self.limits.timeout_s} s timeout"
            ) from exc

    async def decode(
        self, model: GeneratorModel, z: torch.Tensor, labels: torch.Tensor | None
    ) -> np.ndarray:
        """Decode through the micro-batcher when enabled, else directly."""
        n = int(z.shape[0])
        self.metrics.observe_batch(model.name, n)
        batcher = self.batchers.get(model.name)
        if batcher is not None:
            return await self.within_timeout(batcher.submit((z, labels)))
        self.metrics.observe_batch(model.name, n, "model_call")
        return await self.run(model.decode, z, labels, inline=n <= INLINE_MAX_SAMPLES)


def check_labels(model: GeneratorModel, labels: int | list[int] | None, n: int) -> None:
    """422 unless labels fit the model: none for unconditional, classes in range, one or n."""
    if labels is None:
        return
    if model.num_classes is None:
        raise _validation(("body", "labels"), f"model {model.name!r} is unconditional; omit labels")
    values = [labels] if isinstance(labels, int) else labels
    if not isinstance(labels, int) and len(values) != n:
        raise _validation(
            ("body", "labels"), f"expected one label or {n} labels, got {len(values)}"
        )
    bad = [v for v in values if not 0 <= v < model.num_classes]
    if bad:
        raise _validation(
            ("body", "labels"), f"classes must be in [0, {model.num_classes}), got {bad[:5]}"
        )


def check_latents(model: GeneratorModel, z: list[list[float]]) -> None:
    """422 unless every vector has `latent_dim` values, each within ±Z_LIMIT."""
    for i, vector in enumerate(z):
        if len(vector) != model.latent_dim:
            raise _validation(
                ("body", "z", i), f"expected {model.latent_dim} values, got {len(vector)}"
            )
        if any(abs(v) > Z_LIMIT for v in vector):
            raise _validation(("body", "z", i), f"values must lie in [-{Z_LIMIT}, {Z_LIMIT}]")


def check_images(shape: Sequence[int], bounds: tuple[float, float], x: list[list[float]]) -> None:
    """422 unless every flattened image has `prod(shape)` values, each within `bounds`."""
    size, (lo, hi) = math.prod(shape), bounds
    for i, values in enumerate(x):
        if len(values) != size:
            raise _validation(
                ("body", "x", i), f"expected {size} values (shape {list(shape)}), got {len(values)}"
            )
        if any(not lo <= v <= hi for v in values):
            raise _validation(("body", "x", i), f"values must lie in [{lo}, {hi}]")


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def grid(images: np.ndarray, padding: int = 1) -> np.ndarray:
    """`[n, H, W, C]` uint8 -> one near-square `[H', W', C]` uint8 grid."""
    n, h, w, c = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, c), np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        out[y : y + h, x : x + w] = images[i]
    return out


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), media_type="application/json")


def render_samples(
    model: GeneratorModel, samples: np.ndarray, labels: torch.Tensor | None, fmt: str
) -> Response:
    """The response for `format` = array (JSON), png (JSON of base64 PNGs) or grid (image/png)."""
    body: dict[str, Any] = {
        "model": model.name,
        "n": int(samples.shape[0]),
        "shape": list(samples.shape[1:]),
        "labels": labels.tolist() if labels is not None else None,
    }
    if fmt == "array" or not model.is_image:
        body["data"] = samples.tolist()
        return _json(body)
    images = model.to_uint8(samples)
    if fmt == "grid":
        return Response(_png(grid(images)), media_type="image/png")
    body["images"] = [base64.b64encode(_png(image)).decode() for image in images]
    return _json(body)


def rows_response(model: TabularModel, frame: Any, start: float) -> Response:
    """The impute/synthesize body: the rows and the milliseconds since `start`."""
    return _rows_json(model.name, model.rows_out(frame), start)


def _rows_json(name: str, rows: list[dict[str, Any]], start: float) -> Response:
    latency = (time.perf_counter() - start) * 1000
    return _json({"model": name, "rows": rows, "latency_ms": round(latency, 3)})


def create_app(
    model_dirs: Sequence[str | Path] = (),
    *,
    options: ServeOptions | None = None,
    models: dict[str, ServedModel] | None = None,
) -> FastAPI:
    """Build the app: load and verify `model_dirs` (plus any ready `models`), wire the routes."""
    options = options or ServeOptions()
    check_options(options)
    from gankit.crypto import using_key

    with using_key(options.encryption_key):  # None: $GANKIT_KEY / $GANKIT_KEY_FILE, if set
        served, refused = load_models(model_dirs, LoadOptions(options.runtime, options.threads))
    served.update(models or {})
    service = Service(served, refused, options)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        for batcher in service.batchers.values():
            batcher.close()
        if service.audit is not None:
            service.audit.close()

    app = FastAPI(
        title="gankit serve",
        version="1",
        description="Generate samples, impute missing values and synthesize rows.",
        lifespan=lifespan,
        docs_url="/docs" if options.docs else None,
        redoc_url="/redoc" if options.docs else None,
    )
    app.state.service = service
    _add_routes(app, service)
    _publish_model_names(app, service)
    # the last added runs first: headers on everything, then metrics/audit, address limit, size
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=options.limits.max_body_bytes)
    app.add_middleware(AddressRateLimitMiddleware, limiter=service.address_rate)
    app.add_middleware(ObserverMiddleware, metrics=service.metrics, audit=service.audit)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


# request schema -> the model kinds that answer it (from the registry)
REQUEST_KINDS = {
    request: tuple(name for name, entry in KINDS.items() if request in entry.requests)
    for request in sorted({r for entry in KINDS.values() for r in entry.requests})
}


def _publish_model_names(app: FastAPI, service: Service) -> None:
    """List the served model names (as an enum per request kind) and the server's limits on
    counts in the OpenAPI schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.get("components", {}).get("schemas", {})
            for request, kinds in REQUEST_KINDS.items():
                names = [m.name for m in service.models.values() if m.kind in kinds]
                if names and request in components:
                    components[request]["properties"]["model"]["enum"] = names
            limits = service.limits
            for request, field, key, value in [
                ("GenerateRequest", "n", "maximum", limits.max_n),
                ("LatentRequest", "n", "maximum", limits.max_n),
                ("DecodeRequest", "z", "maxItems", limits.max_n),
                ("EncodeRequest", "x", "maxItems", limits.max_n),
                ("TranslateRequest", "x", "maxItems", limits.max_n),
                ("SynthesizeRequest", "n", "maximum", limits.max_rows),
                ("ImputeRequest", "rows", "maxItems", limits.max_rows),
            ]:
                if request in components:
                    components[request]["properties"][field][key] = value
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_routes(app: FastAPI, service: Service) -> None:
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="gk_<id>_<secret>")

    def scope(name: str) -> Any:
        """A route dependency that demands the scope `name`."""

        async def dependency(request: Request, key: str | None = Security(key_header)) -> Principal:
            return service.principal(request, key, name)

        return Depends(dependency)

    @app.exception_handler(GankitError)
    async def gankit_error(request: Request, exc: GankitError) -> JSONResponse:
        if isinstance(exc, DataError | ConfigError):
            log.warning("%s %s: %s", request.method, request.url.path, exc)
            item = {"loc": ["body"], "msg": str(exc), "type": "value_error"}
            return JSONResponse({"detail": [item]}, status_code=422)
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": json_safe_errors(exc.errors())}, status_code=422)

    _add_ops_routes(app, service, scope)
    _add_model_routes(app, service, key_header)
    _add_generator_routes(app, service, scope)
    _add_tabular_routes(app, service, scope)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _add_ops_routes(app: FastAPI, service: Service, scope: Callable) -> None:
    @app.get("/healthz", tags=["ops"], responses=documented(429))
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=ReadyResponse,
        responses={
            503: {"model": ReadyResponse, "description": "no model could be loaded"},
            **documented(429),
        },
    )
    async def readyz() -> JSONResponse:
        """Readiness: at least one model is loaded."""
        ready = bool(service.models)
        body = {"ready": ready, "models": len(service.models), "refused": len(service.refused)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **documented(*AUTH),
        },
        dependencies=[scope("admin")],
    )
    async def metrics() -> Response:
        """Prometheus metrics (needs the `admin` scope)."""
        for monitor in service.drift.values():  # drift gauges as of now (drift.py: amortised)
            monitor.refresh()
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")


def _add_model_routes(app: FastAPI, service: Service, key_header: APIKeyHeader) -> None:
    @app.get("/v1/models", tags=["models"], response_model=ModelList, responses=documented(*AUTH))
    async def list_models(
        request: Request, key: str | None = Security(key_header)
    ) -> dict[str, Any]:
        """Every served model with its model.json metadata (any valid key). Refused model
        directories are listed by name; their paths and reasons only for the `admin` scope."""
        who = _any_scope(service, request, key)
        body: dict[str, Any] = {
            "models": [m.info() for m in service.models.values()],
            "refused": [Path(d).name for d in service.refused],
        }
        if who.allows("admin"):
            body["refused_details"] = dict(service.refused)
        return body

    @app.get(
        "/v1/models/{name}",
        tags=["models"],
        response_model=ModelInfo,
        responses=documented(*AUTH, 404, 422),
    )
    async def get_model(
        name: str, request: Request, key: str | None = Security(key_header)
    ) -> dict[str, Any]:
        """One model's metadata."""
        _any_scope(service, request, key)
        if name not in service.models:
            raise HTTPException(404, f"no model named {name!r}")
        return service.models[name].info()

    @app.get(
        "/v1/models/{name}/quality",
        tags=["models"],
        response_model=QualityReport,
        responses=documented(*AUTH, 404, 422),
    )
    async def model_quality(
        name: str, request: Request, key: str | None = Security(key_header)
    ) -> dict[str, Any]:
        """Drift of the model's recent inputs (imputer) or outputs (synthesizer) against its
        training distribution, per column: PSI, KS / TV, flagged or not (any valid key)."""
        _any_scope(service, request, key)
        if name not in service.models:
            raise HTTPException(404, f"no model named {name!r}")
        monitor = service.drift.get(name)
        return monitor.report() if monitor is not None else not_monitored(name)


def _any_scope(service: Service, request: Request, key: str | None) -> Principal:
    """Any valid key may read metadata (403, naming `admin`, only if it has no scope)."""
    who = service.authenticate(request, key)
    service.authorize(who, next((s for s in SCOPES if who.allows(s)), "admin"), request)
    return who


def _add_generator_routes(app: FastAPI, service: Service, scope: Callable) -> None:
    image: dict[int | str, dict[str, Any]] = {
        200: {
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            "description": "JSON samples, or a PNG grid",
        },
        **documented(*AUTH, 400, 404, 413, 422, 504),
    }

    @app.post(
        "/v1/generate",
        tags=["generate"],
        response_model=SamplesResponse,
        responses=image,
        dependencies=[scope("generate")],
    )
    async def generate(req: GenerateRequest, request: Request) -> Response:
        """Draw n samples (seeded, optionally truncated, per class for conditional models)."""
        model = service.generator(request, req.model)
        service.check_n(request, req.n)
        if req.rejection:
            if req.truncation is not None or req.labels is not None or req.codes is not None:
                raise DataError("rejection sampling takes neither truncation, labels nor codes")
            samples = await service.run(
                model.rejection_sample, req.n, req.seed, req.rejection_quantile
            )
            return render_samples(model, samples, None, req.format)
        check_labels(model, req.labels, req.n)
        z = model.latent(req.n, req.seed, req.truncation)
        if req.codes is not None:
            try:
                z = model.with_codes(z, req.codes.model_dump(exclude_none=True))
            except DataError as exc:
                raise _validation(("body", "codes"), str(exc)) from exc
        labels = model.labels_for(req.n, req.seed, req.labels)
        samples = await service.decode(model, z, labels)
        return render_samples(model, samples, labels, req.format)

    @app.post(
        "/v1/latent",
        tags=["generate"],
        response_model=LatentResponse,
        responses=documented(*AUTH, 400, 404, 413, 422),
        dependencies=[scope("generate")],
    )
    async def latent(req: LatentRequest, request: Request) -> Response:
        """Draw latent vectors, e.g. the ends of a walk through the latent space."""
        model = service.generator(request, req.model)
        service.check_n(request, req.n)
        z = model.latent(req.n, req.seed, req.truncation)
        return _json({"model": model.name, "z": z.tolist()})

    @app.post(
        "/v1/decode",
        tags=["generate"],
        response_model=SamplesResponse,
        responses=image,
        dependencies=[scope("generate")],
    )
    async def decode(req: DecodeRequest, request: Request) -> Response:
        """Decode given latent vectors into samples."""
        model = service.generator(request, req.model)
        service.check_n(request, len(req.z), "z")
        check_latents(model, req.z)
        check_labels(model, req.labels, len(req.z))
        z = torch.tensor(req.z, dtype=torch.float32)
        labels = model.labels_for(len(req.z), 0, req.labels)
        samples = await service.decode(model, z, labels)
        return render_samples(model, samples, labels, req.format)

    @app.post(
        "/v1/encode",
        tags=["generate"],
        response_model=EncodeResponse,
        responses=documented(*AUTH, 400, 404, 413, 422),
        dependencies=[scope("generate")],
    )
    async def encode(req: EncodeRequest, request: Request) -> Response:
        """Posterior means and log-variances of given samples (models with an encoder)."""
        model = service.model(request, req.model, REQUEST_KINDS["EncodeRequest"])
        assert isinstance(model, GeneratorModel)
        service.check_n(request, len(req.x), "x")
        size = math.prod(model.output_shape)
        for i, values in enumerate(req.x):
            if len(values) != size:
                raise _validation(("body", "x", i), f"expected {size} values, got {len(values)}")
            if any(abs(v) > Z_LIMIT for v in values):
                raise _validation(("body", "x", i), f"values must lie in [-{Z_LIMIT}, {Z_LIMIT}]")
        x = torch.tensor(req.x, dtype=torch.float32).view(len(req.x), *model.output_shape)
        mu, logvar = await service.run(model.encode, x, inline=len(x) <= INLINE_MAX_SAMPLES)
        return _json({"model": model.name, "z": mu.tolist(), "logvar": logvar.tolist()})

    @app.post(
        "/v1/translate",
        tags=["generate"],
        response_model=TranslateResponse,
        responses=documented(*AUTH, 400, 404, 413, 422, 504),
        dependencies=[scope("generate")],
    )
    async def translate(req: TranslateRequest, request: Request) -> Response:
        """Translate images to the other domain (image-to-image models: CycleGAN)."""
        model = service.model(request, req.model, REQUEST_KINDS["TranslateRequest"])
        assert isinstance(model, TranslatorModel)
        n = len(req.x)
        service.check_n(request, n, "x")
        check_images(model.output_shape, model.data_range, req.x)
        x = torch.tensor(req.x, dtype=torch.float32).view(n, *model.output_shape)
        service.metrics.observe_batch(model.name, n)
        out = await service.run(model.translate, x, req.direction, inline=n <= INLINE_MAX_SAMPLES)
        body = {"model": model.name, "direction": req.direction, "shape": list(model.output_shape)}
        return _json({**body, "x": out.reshape(n, -1).tolist()})


def _add_tabular_routes(app: FastAPI, service: Service, scope: Callable) -> None:
    @app.post(
        "/v1/impute",
        tags=["tabular"],
        response_model=RowsResponse,
        responses=documented(*AUTH, 400, 404, 413, 422, 504),
        dependencies=[scope("impute")],
    )
    async def impute(req: ImputeRequest, request: Request) -> Response:
        """Fill the nulls of the given rows."""
        model = service.tabular(request, req.model, "ImputeRequest")
        service.check_n(request, len(req.rows), "rows", service.limits.max_rows)
        start = time.perf_counter()
        fast = service.numeric.get(model.name)
        if fast is not None:  # numbers only: no pandas, micro-batched (serve/numeric.py)
            x = fast.check(req.rows)
            service.metrics.observe_batch(model.name, len(x))
            batcher = service.batchers.get(model.name)
            if batcher is not None:
                filled = await service.within_timeout(batcher.submit(x))
            else:
                inline = len(x) <= INLINE_MAX_SAMPLES
                filled = (await service.run(fast.run, [x], inline=inline))[0]
            return _rows_json(model.name, fast.rows_out(filled), start)
        frame = check_and_observe(service, model, req.rows)
        service.metrics.observe_batch(model.name, len(req.rows))
        filled = await service.run(model.impute, frame, inline=len(req.rows) <= INLINE_MAX_SAMPLES)
        return rows_response(model, filled, start)

    @app.post(
        "/v1/impute/stream",
        tags=["tabular"],
        response_class=StreamingResponse,
        responses={
            200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
            **documented(*AUTH, 404, 422),
        },
        dependencies=[scope("impute")],
    )
    async def impute_stream(model: str, request: Request) -> Response:
        """Chunked NDJSON in, NDJSON out: one row per line, each answered as soon as it arrives.

        Each output line is {"row": {...}, "latency_ms": x} or {"line": i, "error": [...]}.
        """
        from gankit.serve.stream import impute_chunks

        served = service.tabular(request, model, "ImputeRequest")
        limit = service.limits.max_body_bytes
        return LineStream(impute_chunks(served, request.stream(), limit, service.metrics))

    @app.post(
        "/v1/synthesize",
        tags=["tabular"],
        response_model=RowsResponse,
        responses=documented(*AUTH, 400, 404, 413, 422, 504),
        dependencies=[scope("synthesize")],
    )
    async def synthesize(req: SynthesizeRequest, request: Request) -> Response:
        """Draw n synthetic rows."""
        model = service.tabular(request, req.model, "SynthesizeRequest")
        service.check_n(request, req.n, "n", service.limits.max_rows)
        if req.conditions and (errors := model.check_conditions(req.conditions)):
            raise RequestValidationError(errors)
        service.metrics.observe_batch(model.name, req.n)
        start = time.perf_counter()
        frame = await service.run(model.sample, req.n, req.seed, req.conditions)
        observe_drift(service, model.name, frame)
        return rows_response(model, frame, start)


class LineStream(Response):
    """A chunked NDJSON response that reads the request body while it answers.

    Starlette's StreamingResponse also listens for a disconnect on `receive`, which competes
    with the generator for the request body chunks; this one only sends.
    """

    media_type = "application/x-ndjson"

    def __init__(self, lines: Any):
        super().__init__(media_type=self.media_type)
        self.lines = lines
        del self.headers["content-length"]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for line in self.lines:
            await send({"type": "http.response.body", "body": line.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats (NaN, ±Infinity, 1e999 parsed as inf) as text and
    anything else JSON cannot hold as its repr, so a 422 can echo any input."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return repr(value)


def json_safe_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors as JSON: loc, msg, type, and the offending input (made JSON-safe)."""
    out = []
    for error in errors:
        item = {
            "loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "value_error")),
        }
        if "input" in error:
            item["input"] = json_safe(error["input"])
        if error.get("ctx"):
            item["ctx"] = json_safe(dict(error["ctx"]))
        out.append(item)
    return out


def check_and_observe(service: Service, model: TabularModel, rows: Sequence[Any]) -> Any:
    """Validate rows (422 naming the row and column) and update the input-quality metrics."""
    check = model.check_rows(rows)
    if check.errors:
        raise RequestValidationError(check.errors)
    service.metrics.observe_inputs(
        model.name, model.column_names, check.missing, check.out_of_range, len(rows)
    )
    observe_drift(service, model.name, check.frame)
    return check.frame


def observe_drift(service: Service, name: str, frame: Any) -> None:
    """Add rows a tabular model received (impute) or handed out (synthesize) to its drift
    window (serve/drift.py)."""
    monitor = service.drift.get(name)
    if monitor is not None and monitor.columns:
        monitor.observe(frame, service.metrics)


def serve(
    model_dirs: Sequence[str | Path],
    options: ServeOptions,
    port: int = 8000,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    log_level: str = "info",
) -> None:
    """Run the service under uvicorn (one worker; uvloop/httptools when installed)."""
    import uvicorn

    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise ConfigError("TLS needs both --ssl-certfile and --ssl-keyfile")
    for path in (ssl_certfile, ssl_keyfile):
        if path and not Path(path).is_file():
            raise ConfigError(f"{path}: TLS file not found")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(options.threads)
    app = create_app(model_dirs, options=options)
    if not app.state.service.models:
        raise ConfigError(
            f"none of the model directories could be served: {app.state.service.refused}"
        )
    uvicorn.run(
        app,
        host=options.host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=5,
        limit_concurrency=1024,
        server_header=False,
    )
