"""Request and response bodies of the `/v1` API (pydantic; published in the OpenAPI schema).

Static bounds live here; bounds that depend on the server's limits or on the model (max n,
latent size, number of classes, column schema) are checked in `app.py`, and every failure is a
422 whose `loc` names the field. Types are strict: numbers are JSON numbers (`"n": "5"` and
`"n": true` are refused), integers are integers, and NaN / Infinity (which Python's JSON parser
lets through) are refused where a number is expected.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

SEED_MAX = 2**63 - 1
# A table cell: checked against the model's schema by `validate_rows` (numbers in number
# columns, known categories in categorical ones), which names the row and the column.
Cell = Annotated[
    Any,
    WithJsonSchema(
        {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]}
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, strict=True, protected_namespaces=()
    )


CodeValue = Annotated[float, Field(ge=-100, le=100)]


class Codes(_Strict):
    """InfoGAN latent codes to fix (models whose model.json has `codes`): `categorical` one
    category in 0..K-1 for every sample or one per sample; `continuous` C values (`null` keeps
    that code drawn) or one list of C values per sample. Codes not given are drawn."""

    categorical: int | list[int] | None = None
    continuous: list[CodeValue | None] | list[list[CodeValue]] | None = None


class GenerateRequest(_Strict):
    """Draw `n` samples. `labels` (one class or one per sample) only for conditional models.

    `truncation` t redraws latent values beyond ±t (t >= 0.1 keeps the redraw loop short).
    `rejection` keeps only draws the model's saved discriminator finds realistic (discriminator
    rejection sampling; `rejection_quantile` < 1 caps the density ratio); it takes neither
    truncation nor labels. `codes` fixes an InfoGAN model's latent codes (see `Codes`).
    """

    model: str = Field(min_length=1, max_length=200)
    n: int = Field(1, ge=1)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    truncation: float | None = Field(None, ge=0.1, le=10)
    labels: int | list[int] | None = None
    format: Literal["array", "png", "grid"] = "array"
    rejection: bool = False
    rejection_quantile: float = Field(1.0, gt=0, le=1)
    codes: Codes | None = None


class LatentRequest(_Strict):
    """Draw `n` latent vectors (to move through the latent space and `decode` them)."""

    model: str = Field(min_length=1, max_length=200)
    n: int = Field(1, ge=1)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    truncation: float | None = Field(None, ge=0.1, le=10)


class DecodeRequest(_Strict):
    """Decode given latent vectors (each of the model's `latent_dim`, |value| <= 100)."""

    model: str = Field(min_length=1, max_length=200)
    z: list[list[float]] = Field(min_length=1)
    labels: int | list[int] | None = None
    format: Literal["array", "png", "grid"] = "array"


class EncodeRequest(_Strict):
    """Encode given samples (models with an encoder: VAEs). Each sample is flattened row-major
    to the model's `prod(output_shape)` values, |value| <= 100."""

    model: str = Field(min_length=1, max_length=200)
    x: list[list[float]] = Field(min_length=1)


class TranslateRequest(_Strict):
    """Translate images with an image-to-image model (CycleGAN): "a2b" maps domain A to B, "b2a"
    B to A. Each image is flattened row-major to the model's `prod(output_shape)` values, in the
    model's pixel range [-1, 1] (as `EncodeRequest`'s `x`)."""

    model: str = Field(min_length=1, max_length=200)
    x: list[list[float]] = Field(min_length=1)
    direction: Literal["a2b", "b2a"] = "a2b"


class ImputeRequest(_Strict):
    """Rows as objects column -> value; `null` (or an absent column) marks a missing value."""

    model: str = Field(min_length=1, max_length=200)
    rows: list[dict[str, Cell]] = Field(min_length=1)


class SynthesizeRequest(_Strict):
    """Draw `n` synthetic rows; `conditions` fixes categorical columns (column -> category)."""

    model: str = Field(min_length=1, max_length=200)
    n: int = Field(1, ge=1)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    conditions: dict[str, Cell] | None = None


class SamplesResponse(BaseModel):
    """Samples as nested arrays (`format=array`) or base64 PNGs (`format=png`)."""

    model_config = ConfigDict(protected_namespaces=())
    model: str
    n: int
    shape: list[int]
    labels: list[int] | None = None
    data: list[Any] | None = None
    images: list[str] | None = None


class LatentResponse(BaseModel):
    """Latent vectors `[n, latent_dim]`."""

    model_config = ConfigDict(protected_namespaces=())
    model: str
    z: list[list[float]]


class EncodeResponse(BaseModel):
    """Posterior means `z` and log-variances `logvar`, each `[n, latent_dim]`."""

    model_config = ConfigDict(protected_namespaces=())
    model: str
    z: list[list[float]]
    logvar: list[list[float]]


class TranslateResponse(BaseModel):
    """The translated images, each flattened row-major to `prod(shape)` values in [-1, 1]."""

    model_config = ConfigDict(protected_namespaces=())
    model: str
    direction: str
    shape: list[int]
    x: list[list[float]]


class RowsResponse(BaseModel):
    """Rows as objects column -> value."""

    model_config = ConfigDict(protected_namespaces=())
    model: str
    rows: list[dict[str, Any]]
    latency_ms: float


class QualityReport(BaseModel):
    """Drift of a served tabular model (`GET /v1/models/{name}/quality`): status is "ok",
    "drift", "warming up", "no reference" or "not monitored"; per column the window size `n`,
    `psi`, `ks` (numbers) or `tv` (categories) and `drift`."""

    model: str
    monitored: bool
    status: str
    reference: str | None = None
    window: int = 0
    config: dict[str, Any] | None = None
    columns: list[dict[str, Any]] = []


class ModelInfo(BaseModel):
    """A served model and its `model.json` metadata (tabular models: the schema's columns, as
    in model.json: name, kind continuous/integer/categorical, min, max, categories)."""

    name: str
    kind: str
    tags: list[str] = []  # capabilities from the registry: generator, image, tabular, imputation
    runtime: str
    spec: dict[str, Any]
    latent_dim: int | None = None
    output_shape: list[int] | None = None
    num_classes: int | None = None
    data_range: list[float] | None = None
    columns: list[dict[str, Any]] | None = None
    identifiers: list[str] | None = None


class ModelList(BaseModel):
    """Every served model, and the names of the directories refused at start; the paths and
    reasons (`refused_details`) only for a key with the `admin` scope."""

    models: list[ModelInfo]
    refused: list[str]
    refused_details: dict[str, str] | None = None


class ErrorResponse(BaseModel):
    """An error other than a validation error: what went wrong, in words."""

    detail: str


class ValidationErrorItem(BaseModel):
    """One validation problem: where (`loc`, e.g. ["body", "rows", 0, "age"]) and why."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorResponse(BaseModel):
    """422: every problem found in the request, each naming its field."""

    detail: list[ValidationErrorItem]


class ReadyResponse(BaseModel):
    """Readiness: models served and directories refused (200 when ready, else 503)."""

    ready: bool
    models: int
    refused: int
