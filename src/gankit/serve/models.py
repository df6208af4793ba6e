"""Served models: load verified model directories and dispatch on `model.json`'s "kind".

Every directory is checked against the SHA-256 in its `model.json` before anything else is
read; a tampered or unreadable directory is refused with one log line and the others are still
served. Generators run in eager PyTorch or, with `runtime="onnx"`, through ONNX Runtime on the
`model.onnx` written by `gankit export` (its own SHA-256 is checked too).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import CheckpointError, DataError, GankitError
from gankit.generator import resolve_labels
from gankit.modeldir import sha256_file, verify_model_dir
from gankit.registry import KINDS, kind, kinds_with
from gankit.tabular.transform import TableSchema, category_index, validate_rows

log = logging.getLogger("gankit.serve")

GENERATOR_KINDS = kinds_with("generator")
TABULAR_KINDS = kinds_with("tabular")


SERVE_MIN_ACCEPTANCE = 0.01  # rejection sampling: refuse models that keep fewer draws than this


class ServedModel:
    """A loaded model: its name, kind, directory and `model.json` spec."""

    def __init__(self, name: str, spec: dict[str, Any], directory: Path | None = None):
        self.name, self.spec, self.directory = name, spec, directory
        self.kind: str = spec.get("kind", "")
        self.runtime = "torch"

    def info(self) -> dict[str, Any]:
        """Metadata for `/v1/models`: the spec without training internals, plus the runtime."""
        meta = {k: v for k, v in self.spec.items() if k not in ("config",)}
        entry = KINDS.get(self.kind)
        return {
            "name": self.name,
            "kind": self.kind,
            "tags": sorted(entry.tags) if entry else [],  # what it can do: clients read these
            "runtime": self.runtime,
            "spec": meta,
        }


# --------------------------------------------------------------------------- generators


class GeneratorModel(ServedModel):
    """An image or toy generator: latent sampling in torch, decoding in torch or ONNX Runtime."""

    def __init__(self, name: str, generator: Any, directory: Path | None = None):
        super().__init__(name, dict(generator.spec), directory)
        self.generator = generator
        self.latent_dim = int(generator.latent_dim)
        self.output_shape = tuple(int(s) for s in generator.output_shape)
        classes = self.spec.get("num_classes")
        self.num_classes: int | None = int(classes) if classes else None
        self.is_image = "image" in kind(self.kind).tags or len(self.output_shape) == 3
        # images: the pixel range (default [-1, 1]); toy data is unbounded (model.json: null)
        bounds = (self.spec.get("data") or {}).get("range")
        if bounds is None and self.is_image:
            bounds = (-1.0, 1.0)
        self.data_range = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self._decode: Callable[[torch.Tensor, torch.Tensor | None], np.ndarray] = self._torch_decode
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """Adds what a client needs to call generate/decode."""
        out = super().info()
        out.update(
            latent_dim=self.latent_dim,
            output_shape=list(self.output_shape),
            num_classes=self.num_classes,
            data_range=None if self.data_range is None else list(self.data_range),
        )
        return out

    def rejection_sample(self, n: int, seed: int | None, quantile: float) -> np.ndarray:
        """`[n, *output_shape]` samples kept by discriminator rejection (torch, not ONNX).

        The acceptance floor is 1 %, so one request costs at most ~100× a plain one (plus the
        calibration draws); below it the caller gets a 422 that says so.
        """
        sampler = self.generator.rejection_sampler(quantile, min_acceptance=SERVE_MIN_ACCEPTANCE)
        with torch.inference_mode():
            return sampler.sample(n, seed).float().numpy()

    def latent(self, n: int, seed: int | None, truncation: float | None) -> torch.Tensor:
        """`[n, latent_dim]` noise, reproducible for a seed."""
        return self.generator.sample_latent(n, seed=seed, truncation=truncation)

    @property
    def codes(self) -> dict[str, int] | None:
        """InfoGAN's code layout `{"categorical": K, "continuous": C}`; None for other models."""
        return getattr(self.generator, "codes", None)

    def with_codes(self, z: torch.Tensor, codes: dict[str, Any]) -> torch.Tensor:
        """`z` with InfoGAN codes fixed (`Generator.with_codes`); DataError for codes the model
        has not, categories out of range, or the wrong number of values."""
        layout = self.codes
        if layout is None:
            raise DataError(f"model {self.name!r} has no latent codes (InfoGAN only); omit codes")
        k, c, n = layout["categorical"], layout["continuous"], len(z)
        for name, size in (("categorical", k), ("continuous", c)):
            if codes.get(name) is not None and not size:
                raise DataError(f"model {self.name!r} has no {name} code; omit codes.{name}")
        cat = codes.get("categorical")
        if cat is not None:
            values = [cat] if isinstance(cat, int) else list(cat)
            if not isinstance(cat, int) and len(values) != n:
                raise DataError(f"categorical: expected one category or {n}, got {len(values)}")
            bad = [v for v in values if not 0 <= v < k]
            if bad:
                raise DataError(f"categorical: categories must be in 0..{k - 1}, got {bad[:5]}")
        return self.generator.with_codes(z, codes)

    def labels_for(
        self, n: int, seed: int | None, labels: int | Sequence[int] | None
    ) -> torch.Tensor | None:
        """Class labels for a conditional model: given, broadcast, or drawn with the seed."""
        if self.num_classes is None:
            return None
        prior = getattr(self.generator, "class_prior", None)  # a self-conditioned model's
        if labels is None and prior is not None:  # cluster shares, drawn as the library does
            return resolve_labels(None, n, self.num_classes, seed, prior)
        if labels is None:
            gen = torch.Generator().manual_seed(
                (seed if seed is not None else torch.seed()) ^ 0x5EED
            )
            return torch.randint(0, self.num_classes, (n,), generator=gen)
        if isinstance(labels, int):
            return torch.full((n,), labels, dtype=torch.long)
        return torch.as_tensor(list(labels), dtype=torch.long)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
        """`[n, *output_shape]` float32 samples in the data range."""
        return self._decode(z, labels)

    def _torch_decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
        with torch.inference_mode():
            out = (
                self.generator.decode(z, labels=labels)
                if labels is not None
                else self.generator.decode(z)
            )
        return out.float().numpy()

    def use_onnx(self, path: Path, threads: int = 1) -> None:
        """Decode with ONNX Runtime from `path` (already verified)."""
        ort = _require_ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run(z: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
            feed = {names[0]: z.numpy().astype(np.float32)}
            if len(names) > 1:
                if labels is None:
                    raise GankitError(f"{path}: the ONNX graph expects labels")
                feed[names[1]] = labels.numpy().astype(np.int64)
            with self._lock:  # one session call at a time keeps thread use predictable
                return session.run(None, feed)[0]

        self._decode = run
        self.runtime = "onnx"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means and log-variances of samples `[n, *output_shape]` (VAEs)."""
        with torch.inference_mode():
            return self.generator.encode(x, variance=True)

    def to_uint8(self, samples: np.ndarray) -> np.ndarray:
        """`[n, C, H, W]` samples -> `[n, H, W, C]` uint8 for PNG encoding."""
        lo, hi = self.data_range or (-1.0, 1.0)
        scaled = np.clip(np.rint((samples - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
        return scaled.transpose(0, 2, 3, 1)


class TranslatorModel(ServedModel):
    """An image-to-image translator (CycleGAN): `translate(x, direction)` in eager torch."""

    def __init__(self, name: str, translator: Any, directory: Path | None = None):
        super().__init__(name, dict(translator.spec), directory)
        self.translator = translator
        self.output_shape = tuple(int(s) for s in translator.shape)
        self.directions = tuple(sorted(self.spec.get("directions") or ("a2b", "b2a")))
        self.data_range = (-1.0, 1.0)  # CycleGAN images: pixels scaled to [-1, 1]

    def info(self) -> dict[str, Any]:
        """Adds what a client needs to call translate: the image shape and pixel range."""
        out = super().info()
        out.update(output_shape=list(self.output_shape), data_range=list(self.data_range))
        return out

    def translate(self, x: torch.Tensor, direction: str) -> np.ndarray:
        """`[n, *output_shape]` images of the source domain -> the other domain (float32)."""
        return self.translator.translate(x, direction).float().numpy()


def _require_ort() -> Any:
    from gankit.errors import require

    return require("onnxruntime", "export")


# --------------------------------------------------------------------------- tabular


@dataclass
class Column:
    """One modelled column of a tabular model, as the service and the benchmark read it."""

    name: str
    numeric: bool
    low: float | None = None
    high: float | None = None
    categories: list[Any] = field(default_factory=list)


def columns_from_schema(schema: Any, where: str) -> list[Column]:
    """The modelled columns of a tabular spec's "schema" (exactly what gankit writes)."""
    return [
        Column(c.name, c.kind != "categorical", c.min, c.max, list(c.categories))
        for c in TableSchema.from_dict(schema, where).columns
    ]


class TabularModel(ServedModel):
    """An imputer (`transform`) or a tabular synthesizer (`sample`) with its table schema.

    Requests are checked with `gankit.tabular.transform.validate_rows`, the same check the
    estimators run on their input, against the `TableSchema` of the model's `model.json`."""

    def __init__(self, name: str, obj: Any, spec: dict[str, Any], directory: Path | None = None):
        super().__init__(name, spec, directory)
        self.obj = obj
        self.schema = TableSchema.from_dict(spec.get("schema"), f"{name}/model.json")
        self.columns = columns_from_schema(spec.get("schema"), f"{name}/model.json")
        self._lock = threading.Lock()

    @property
    def column_names(self) -> list[str]:
        """The modelled column names, in order (identifier columns excluded)."""
        return self.schema.names

    def info(self) -> dict[str, Any]:
        """Adds the columns clients must follow (the model's schema) and its identifiers."""
        out = super().info()
        out["columns"] = [
            {"name": c.name, "kind": c.kind, "min": c.min, "max": c.max, "categories": c.categories}
            for c in self.schema.columns
        ]
        out["identifiers"] = self.schema.identifier_names
        return out

    def check_rows(self, rows: Sequence[Any], loc: tuple = ("body", "rows")) -> RowCheck:
        """Validate rows against the schema; build the DataFrame and the input-quality counts."""
        import pandas as pd

        problems = validate_rows(rows, self.schema)
        if problems:
            errors = [
                _error((*loc, e.row, *([e.column] if e.column else [])), e.message)
                for e in problems
            ]
            return RowCheck(None, errors, [], [])
        missing = [0] * len(self.columns)
        out_of_range = [0] * len(self.columns)
        table: dict[str, list[Any]] = {}
        for j, column in enumerate(self.columns):
            values = [row.get(column.name) for row in rows]
            values = [None if _missing(v) else v for v in values]
            missing[j] = sum(v is None for v in values)
            if column.numeric:
                low, high = column.low, column.high
                values = [None if v is None else float(v) for v in values]
                out_of_range[j] = sum(
                    v is not None and low is not None and high is not None and not low <= v <= high
                    for v in values
                )
            table[column.name] = values
        frame = pd.DataFrame(
            {
                c.name: pd.Series(table[c.name], dtype="float64" if c.numeric else "object")
                for c in self.columns
            }
        )
        given = {k for row in rows for k in row}
        for name in self.schema.identifier_names:
            if name in given or not self.schema.frame:
                frame[name] = pd.Series([row.get(name) for row in rows], dtype="object")
        if self.schema.identifiers:
            frame = frame[[n for n in self.schema.order if n in frame.columns]]
        return RowCheck(frame, [], missing, out_of_range)

    def rows_out(self, frame: Any) -> list[dict[str, Any]]:
        """DataFrame -> JSON-ready rows (NaN becomes null), columns in the schema's order."""
        names = [n for n in self.schema.order if n in frame] or self.column_names
        columns = {}
        for name in names:
            values = frame[name].tolist() if name in frame else [None] * len(frame)
            columns[name] = [
                None if isinstance(v, float) and not math.isfinite(v) else _plain(v) for v in values
            ]
        return [{name: columns[name][i] for name in names} for i in range(len(frame))]

    def impute(self, frame: Any) -> Any:
        """Fill the missing cells of a DataFrame built by `check_rows`."""
        names = list(frame.columns)
        if self._numeric_fast_path():  # the imputer's numpy path: no pandas in the model call
            import pandas as pd

            with self._lock:
                filled = self.obj.transform_numeric(frame[self.column_names].to_numpy(np.float64))
            out = pd.DataFrame(filled, columns=self.column_names)
            for column in self.schema.columns:  # integer dtypes come back as integers
                if column.kind == "integer" and column.dtype.lower().startswith(("int", "uint")):
                    out[column.name] = out[column.name].astype(column.dtype)
            return out
        if not self.schema.frame:  # fitted on an array: positional, every column
            numeric = all(c.numeric for c in self.columns) and not self.schema.identifiers
            frame = frame.to_numpy(dtype=np.float64 if numeric else object)
        with self._lock:
            filled = self.obj.transform(frame)
        return _as_frame(filled, names)

    def _numeric_fast_path(self) -> bool:
        """An imputer with only numeric columns and no identifier columns (issue 15)."""
        return (
            hasattr(self.obj, "transform_numeric")
            and all(c.kind != "categorical" for c in self.schema.columns)
            and not self.schema.identifiers
        )

    def check_conditions(self, conditions: dict[str, Any]) -> list[dict[str, Any]]:
        """Errors for conditions that are not a known category of a categorical column."""
        columns = {c.name: c for c in self.schema.columns}
        categorical = [c.name for c in self.schema.columns if c.kind == "categorical"]
        errors = []
        for key, value in conditions.items():
            column = columns.get(key)
            loc = ("body", "conditions", key)
            if column is None or column.kind != "categorical":
                errors.append(
                    _error(loc, f"not a categorical column; expected one of {categorical}")
                )
            elif category_index(column, value) is None:
                errors.append(
                    _error(loc, f"unknown category {value!r}; expected {column.categories[:20]}")
                )
        if len(conditions) > 1:
            errors.append(
                _error(("body", "conditions"), "conditions may fix one categorical column")
            )
        return errors

    def sample(self, n: int, seed: int | None, conditions: dict[str, Any] | None = None) -> Any:
        """`n` synthetic rows, reproducible for a seed."""
        with self._lock:
            rows = self.obj.sample(n, conditions=conditions or None, seed=seed)
        return _as_frame(rows, self.schema.order)


@dataclass
class RowCheck:
    """The result of `TabularModel.check_rows`."""

    frame: Any
    errors: list[dict[str, Any]]
    missing: list[int]
    out_of_range: list[int]


def _error(loc: tuple, msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": "value_error"}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_frame(data: Any, names: list[str]) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    return pd.DataFrame(np.asarray(data), columns=names)


# --------------------------------------------------------------------------- loading


@dataclass
class LoadOptions:
    """How to load generators: "torch", "onnx", "onnx-int8" or "auto" (ONNX if exported)."""

    runtime: str = "auto"
    threads: int = 1


def served_generator(
    directory: Path, spec: dict[str, Any], options: LoadOptions, sampler: Any
) -> GeneratorModel:
    """`sampler` behind the generate, latent and decode routes: in torch, or in ONNX Runtime on
    the `gankit export` file (runtime onnx/onnx-int8, or auto when an export is recorded;
    verified like the weights)."""
    model = GeneratorModel(_name(directory, spec), sampler, directory)
    runtime = options.runtime
    if runtime == "auto":
        runtime = "onnx" if "onnx" in spec else "torch"
    if runtime in ("onnx", "onnx-int8"):
        key = "onnx" if runtime == "onnx" else "onnx_int8"
        model.use_onnx(verified_onnx(directory, spec, key), options.threads)
        model.runtime = runtime
    return model


def serve_generator(directory: Path, spec: dict[str, Any], options: LoadOptions) -> ServedModel:
    import gankit

    return served_generator(directory, spec, options, gankit.load_generator(directory))


def verified_onnx(directory: Path, spec: dict[str, Any], key: str = "onnx") -> Path:
    """The path of the exported ONNX file (`key` in model.json) after checking its SHA-256."""
    entry = spec.get(key)
    if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
        raise CheckpointError(
            f"{directory}: no ONNX export recorded; run `gankit export {directory}`"
            " (add --quantize for int8)"
        )
    path = directory / Path(entry["file"]).name
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (recorded in model.json)")
    if sha256_file(path) != entry["sha256"]:
        raise CheckpointError(f"{path}: SHA-256 does not match model.json; the file was modified")
    return path


def serve_imputer(directory: Path, spec: dict[str, Any], options: LoadOptions) -> ServedModel:
    from gankit.tabular import GANImputer

    imputer = GANImputer.load(directory)
    model = TabularModel(_name(directory, spec), imputer, spec, directory)
    if options.runtime == "onnx" or (options.runtime == "auto" and "onnx" in spec):
        from gankit.export import OrtRefiner

        imputer.use_refiner(OrtRefiner(verified_onnx(directory, spec), options.threads))
        model.runtime = "onnx"
    return model


def serve_synth(directory: Path, spec: dict[str, Any], options: LoadOptions) -> ServedModel:
    from gankit.tabular import TabularGAN

    return TabularModel(_name(directory, spec), TabularGAN.load(directory), spec, directory)


def serve_vae(directory: Path, spec: dict[str, Any], options: LoadOptions) -> ServedModel:
    """A VAE: its decoder behind the generate, latent and decode routes (torch, or ONNX Runtime
    after `gankit export`), its encoder behind encode (torch)."""
    from gankit.models.vae import load_vae

    return served_generator(directory, spec, options, load_vae(directory))


def serve_bigan(directory: Path, spec: dict[str, Any], options: LoadOptions) -> ServedModel:
    """A BiGAN / ALI: its generator behind the generate, latent and decode routes (torch, or
    ONNX Runtime after `gankit export`, as a VAE's decoder), its encoder behind encode (torch)."""
    from gankit.models.bigan import load_bigan

    return served_generator(directory, spec, options, load_bigan(directory))


def serve_cyclegan(directory: Path, spec: dict[str, Any], options: LoadOptions) -> ServedModel:
    """A CycleGAN: both generators behind the translate route (torch)."""
    from gankit.models.cyclegan import load_cyclegan

    return TranslatorModel(_name(directory, spec), load_cyclegan(directory), directory)


def serve_tvae(directory: Path, spec: dict[str, Any], options: LoadOptions) -> ServedModel:
    from gankit.tabular import TabularVAE

    return TabularModel(_name(directory, spec), TabularVAE.load(directory), spec, directory)


Loader = Callable[[Path, dict[str, Any], LoadOptions], ServedModel]


def registry_loaders() -> dict[str, Loader]:
    """The serving adapter of every kind in the registry that can be served."""
    return {name: entry.serving() for name, entry in KINDS.items() if entry.serve is not None}


def _name(directory: Path, spec: dict[str, Any]) -> str:
    name = spec.get("name")
    return name if isinstance(name, str) and name else directory.resolve().name


def _runtime_for(directory: Path, options: LoadOptions) -> LoadOptions:
    """An encrypted directory is served by eager torch under "auto": its ONNX files stay
    encrypted on disk and are never decrypted to a file for ONNX Runtime."""
    from gankit.crypto import is_encrypted_dir

    if options.runtime == "auto" and is_encrypted_dir(directory):
        return LoadOptions("torch", options.threads)
    return options


def load_models(
    directories: Sequence[str | Path],
    options: LoadOptions | None = None,
    loaders: dict[str, Loader] | None = None,
) -> tuple[dict[str, ServedModel], dict[str, str]]:
    """Load every directory that verifies; return (served by name, refused dir -> reason)."""
    options = options or LoadOptions()
    loaders = loaders if loaders is not None else registry_loaders()
    served: dict[str, ServedModel] = {}
    refused: dict[str, str] = {}
    for raw in directories:
        directory = Path(raw)
        try:
            spec = verify_model_dir(directory)
            name = spec.get("kind")
            if name not in loaders:
                raise CheckpointError(
                    f"{directory}: kind {name!r} cannot be served; "
                    f"expected one of {sorted(loaders)}"
                )
            model = loaders[name](directory, spec, _runtime_for(directory, options))
            if model.name in served:
                raise CheckpointError(
                    f"{directory}: a model named {model.name!r} is already served"
                )
        except (GankitError, ImportError, OSError, ValueError, RuntimeError, KeyError) as exc:
            log.error("refusing to serve %s: %s", directory, exc)
            refused[str(directory)] = str(exc)
            continue
        served[model.name] = model
        log.info("serving %s (%s, %s) from %s", model.name, model.kind, model.runtime, directory)
    return served, refused
