"""`MIWAEImputer`: a deep latent-variable model fitted to incomplete tables (MIWAE, Mattei &
Frellsen, ICML 2019), the second imputation estimator beside `GANImputer`.

Why another one? GANImputer's fill is the conditional expectation under a mixture of a few
Gaussians; where the columns lie on a curve, a manifold or interact through products, a mixture
is misspecified and its network stage rarely keeps a step (docs/tabular.md). MIWAE models the
table as x = decoder(z) + noise with a low-dimensional z, so nonlinear structure is what it
learns first. How (`gankit.models.tabular.miwae`):

* columns are min-max scaled by the shared `MinMaxEncoder`, then standardised on their
  observed entries; the encoder reads the zero-filled row;
* training maximises the importance-weighted bound on the observed entries only (K samples);
  a fraction of the observed entries is held out, and the weights with the lowest error on
  them (self-normalised importance sampling) are kept: early stopping for small tables. The
  steps run on the engine (`MIWAEModel`, `fit_model`; the check is an early-stopping callback),
  so `run_dir` gets checkpoints and metrics and `fit(X, resume=True)` continues a stopped fit;
* `transform`: E[x_m | x_o] by self-normalised importance sampling over `n_samples` latent
  draws; `sample_posterior=True` / `transform_multiple(X, m)`: sampling-importance-resampling
  (draws from the model's p(x_m | x_o); the network's weights are not resampled, so the
  uncertainty about the fit itself is not in the draws).

Numeric columns only (continuous and integer); tables with categories go to `GANImputer`.
scikit-learn compatible: `fit`, `transform`, `fit_transform`, `get_feature_names_out`.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from gankit.engine.callbacks import EarlyStopping
from gankit.engine.runs import estimator_settings, fit_model
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.modeldir import (
    check_bounds,
    check_module_fits,
    read_model_dir,
    weight_shapes,
    write_model_dir,
)
from gankit.models.tabular.gain import SeededRows
from gankit.models.tabular.miwae import LIKELIHOODS, MIWAEModel, MIWAENet, sir_draws, snis_mean
from gankit.registry import MIWAE_KIND
from gankit.tabular.imputer import ImputationWarning, ImputerBase, single_thread
from gankit.tabular.transform import (
    MinMaxEncoder,
    TableSchema,
    as_frame,
    infer_schema,
    join_identifiers,
)

EVAL_EVERY = 100  # steps between held-out checks
VAL_SAMPLES = 50  # importance samples behind a held-out fill
VAL_ROWS = 1000  # held-out error on at most this many rows
CHUNK_CELLS = 100_000  # rows x samples per forward pass at transform (bounds memory)


class HeldOutStopping(EarlyStopping):
    """The engine's early stopping on network `net`: scored every `every` steps, stopped after
    `patience` checks without a lower held-out error, best weights restored at the end; it also
    keeps the mean training bound between checks for `history_`. A fit that ends between two
    checks is also scored at its last step (as the estimator's own loop did), after the final
    checkpoint is written, so a fit resumed from it continues as if it had not stopped."""

    def __init__(self, score: Callable[[], float], every: int, patience: int) -> None:
        super().__init__(score, "net", every=every, patience=patience * every)
        self.running, self.counted = 0.0, 0
        self.bounds: list[float] = []

    def on_step(self, trainer: Any, stats: dict[str, float]) -> None:
        self.running, self.counted = self.running + stats["bound"], self.counted + 1
        if trainer.step % self.every == 0:
            self.bounds.append(self.running / self.counted)
            self.running, self.counted = 0.0, 0
        super().on_step(trainer, stats)

    def on_end(self, trainer: Any) -> None:
        if self.counted:  # steps since the last check: score the final weights too
            self.bounds.append(self.running / self.counted)
            self.running, self.counted = 0.0, 0
            self._consider(trainer, trainer.step)
        super().on_end(trainer)

    def records(self) -> list[dict[str, float]]:
        """Per check: step, mean bound of the steps before it, held-out MSE."""
        return [
            {"step": h["step"], "bound": b, "val_mse": -h["score"]}
            for h, b in zip(self.history, self.bounds, strict=True)
        ]

    def state_dict(self) -> dict[str, Any]:
        extra = {"running": self.running, "counted": self.counted, "bounds": list(self.bounds)}
        return {**super().state_dict(), **extra}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state:
            self.running, self.counted = float(state["running"]), int(state["counted"])
            self.bounds = [float(b) for b in state["bounds"]]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's global generator seeded for a block, and restored after (distributions and
    multinomial draw from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class MIWAEImputer(ImputerBase):
    """Impute NaNs with MIWAE; see the module docstring.

    Parameters: `n_steps` (most Adam steps; early stopping may use fewer), `batch_size`,
    `n_importance` (K of the training bound), `latent_dim` ("auto": min(width - 1, 10), at least
    1), `hidden` (width of the encoder's and decoder's two tanh layers), `likelihood`
    ("student-t" or "gaussian" per column, scale learned), `lr`, `n_samples` (importance samples
    per row at transform), `validation_fraction` (observed entries held out for early stopping;
    0 trains all `n_steps` on every entry), `patience` (held-out checks, every 100 steps,
    without gain before stopping), `sample_posterior` (return one SIR draw instead of the
    mean), `clip` (keep values inside the observed range), `integer_columns`,
    `identifier_columns` (left out of the model, passed through), `run_dir` (checkpoints and
    metrics.jsonl of the training go there; `fit(X, resume=True)` continues from it),
    `verbose`, `random_state`.
    """

    def __init__(
        self,
        n_steps: int = 3000,
        batch_size: int = 64,
        n_importance: int = 20,
        latent_dim: int | str = "auto",
        hidden: int = 64,
        likelihood: str = "student-t",
        lr: float = 2e-3,
        n_samples: int = 500,
        validation_fraction: float = 0.1,
        patience: int = 5,
        sample_posterior: bool = False,
        clip: bool = True,
        integer_columns: Sequence[Any] | str | None = "auto",
        identifier_columns: Sequence[Any] | None = None,
        run_dir: str | None = None,
        verbose: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.n_importance = n_importance
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.likelihood = likelihood
        self.lr = lr
        self.n_samples = n_samples
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.sample_posterior = sample_posterior
        self.clip = clip
        self.integer_columns = integer_columns
        self.identifier_columns = identifier_columns
        self.run_dir = run_dir
        self.verbose = verbose
        self.random_state = random_state

    # ----------------------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, resume: bool = False) -> MIWAEImputer:
        """Learn the schema, the scaling and the VAE from the observed entries of X.

        With `resume`, training continues from the checkpoint in `run_dir` (same X, same
        parameters; `n_steps` may be larger)."""
        self._check_params()
        df, frame = as_frame(X)
        schema = infer_schema(df, frame, None, self.integer_columns, self.identifier_columns)
        categorical = [c.name for c in schema.columns if c.kind == "categorical"]
        if categorical:
            raise DataError(
                f"MIWAEImputer models numeric columns only; {categorical} look categorical. "
                "Use GANImputer for tables with categories, or encode them as numbers"
            )
        encoder = MinMaxEncoder(schema)
        values, mask = encoder.encode(df)
        empty = mask.sum(1) == 0
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} row(s) with no observed value were ignored by fit",
                ImputationWarning,
                stacklevel=2,
            )
            values, mask = values[~empty], mask[~empty]
        if len(values) < 2:
            raise DataError(
                f"need at least 2 rows with an observed value to fit, got {len(values)} "
                "(1 sample is not enough)"
            )
        counts = mask.sum(0)
        mean = (values * mask).sum(0) / counts
        var = (mask * (values - mean) ** 2).sum(0) / counts
        std = np.where(var > 1e-12, np.sqrt(var), 1.0)
        seed = int(np.random.default_rng(self.random_state).integers(2**31))
        width = values.shape[1]
        latent = self.latent_dim if self.latent_dim != "auto" else max(1, min(width - 1, 10))
        self.schema_, self.encoder_ = schema, encoder
        self.mean_, self.std_ = mean, std
        self.latent_dim_, self.n_rows_ = int(latent), len(values)
        x = torch.tensor((values - mean) / std * mask, dtype=torch.float32)
        m = torch.tensor(mask, dtype=torch.float32)
        with single_thread(), seeded(seed):
            self.net_ = MIWAENet(width, self.latent_dim_, self.hidden, self.likelihood)
            self._train(x, m, seed, resume)
        self.net_.eval()
        self.n_features_in_ = len(schema.order)
        if frame:
            self.feature_names_in_ = np.array(schema.order, dtype=object)
        return self

    def _check_params(self) -> None:
        def whole(v: Any, low: int) -> bool:
            return bool(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= low)

        checks = {
            "n_steps": whole(self.n_steps, 0),
            "batch_size": whole(self.batch_size, 1),
            "n_importance": whole(self.n_importance, 1),
            "latent_dim": self.latent_dim == "auto" or whole(self.latent_dim, 1),
            "hidden": whole(self.hidden, 1) and self.hidden <= 1 << 16,
            "lr": isinstance(self.lr, float | int) and 0 < self.lr < math.inf,
            "n_samples": whole(self.n_samples, 1),
            "validation_fraction": isinstance(self.validation_fraction, float | int)
            and 0 <= self.validation_fraction < 1,
            "patience": whole(self.patience, 1),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"MIWAEImputer: invalid {name}={getattr(self, name)!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(
                f"MIWAEImputer: likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}"
            )

    def _hold_out(self, m: torch.Tensor) -> torch.Tensor:
        """Entries hidden from training for early stopping (rows keep one observed value)."""
        if self.validation_fraction == 0:
            return torch.zeros_like(m)
        hide = m * (torch.rand(m.shape) < self.validation_fraction).float()
        lost = (m - hide).sum(1) == 0
        hide[lost] = 0.0
        if hide.sum() < 10:  # too few entries to tell steps apart: train on everything
            return torch.zeros_like(m)
        return hide

    def _train(self, x: torch.Tensor, m: torch.Tensor, seed: int, resume: bool) -> None:
        """Adam on -L_K over random minibatches, on the engine; the early-stopping callback
        keeps the weights best on the held-out entries."""
        hide = self._hold_out(m)
        train_m = m - hide
        val_rows = torch.nonzero(hide.sum(1) > 0).flatten()[:VAL_ROWS]
        vx, vm, vhide = x[val_rows], train_m[val_rows], hide[val_rows]
        net = self.net_  # trained in place; the callback leaves the best weights in it
        model = MIWAEModel(net, n_importance=self.n_importance, lr=self.lr)
        rows = {"x": x * train_m, "mask": train_m}
        provider = SeededRows(rows, min(self.batch_size, len(x)), seed + 1)

        def held_out_score() -> float:
            with torch.no_grad():
                fill = snis_mean(net, vx * vm, vm, VAL_SAMPLES)
                err = float((vhide * (fill - vx) ** 2).sum() / vhide.sum())
            if self.verbose:
                print(f"MIWAEImputer: held-out MSE {err:.4f}", file=sys.stderr)
            return -err

        callbacks: list[Any] = []
        stopping = None
        if len(val_rows):
            stopping = HeldOutStopping(held_out_score, EVAL_EVERY, self.patience)
            callbacks.append(stopping)
        settings = estimator_settings(self.n_steps, seed, verbose=self.verbose)
        trainer = fit_model(
            model, provider, settings, self.run_dir, callbacks=callbacks, resume_run=resume
        )
        self.steps_done_ = trainer.step
        self.best_step_ = trainer.step
        self.history_: list[dict[str, float]] = []
        if stopping is not None:
            if stopping.best_step is not None:
                self.best_step_ = stopping.best_step
            self.history_ = stopping.records()

    # ---------------------------------------------------------------------------- imputing
    def transform(self, X: Any) -> Any:
        """Fill the NaNs of X (a new table is returned; X is not modified): the importance-
        sampled conditional mean, or one SIR draw with `sample_posterior=True`."""
        values, mask, finish = self._prepare(X)
        if self.sample_posterior:
            return finish(self._draws(values, mask, 1, self._seed())[0])
        return finish(self._mean(values, mask, self._seed()))

    def transform_multiple(self, X: Any, m: int = 5) -> list[Any]:
        """`m` completed tables for multiple imputation (Rubin's rules): per row, `n_samples`
        latent proposals, then m sampling-importance-resampling draws from p(x_m | x_o). Table 0
        equals `transform` with `sample_posterior=True`; the same `random_state` gives the same
        tables."""
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
            raise ConfigError(f"transform_multiple: m must be a whole number >= 1, got {m!r}")
        values, mask, finish = self._prepare(X)
        return [finish(t) for t in self._draws(values, mask, int(m), self._seed())]

    def _seed(self) -> int:
        return int(np.random.default_rng(self.random_state).integers(2**31))

    def _chunks(self, n: int, seed: int) -> Iterator[slice]:
        """Row blocks of at most CHUNK_CELLS / n_samples rows, each under its own seed (so a
        row's draws do not depend on how many draws the blocks before it took)."""
        step = max(1, CHUNK_CELLS // self.n_samples)
        for number, start in enumerate(range(0, n, step)):
            with seeded(seed + number):
                yield slice(start, min(n, start + step))

    def _standard(self, values: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, ...]:
        x = torch.tensor((values - self.mean_) / self.std_ * mask, dtype=torch.float32)
        return x, torch.tensor(mask, dtype=torch.float32)

    def _unstandard(self, z: torch.Tensor) -> np.ndarray:
        return z.double().numpy() * self.std_ + self.mean_

    def _mean(self, values: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        x, m = self._standard(values, mask)
        out = torch.empty_like(x)
        with single_thread(), torch.no_grad():
            for rows in self._chunks(len(x), seed):
                out[rows] = snis_mean(self.net_, x[rows], m[rows], self.n_samples)
        return self._unstandard(out)

    def _draws(self, values: np.ndarray, mask: np.ndarray, m: int, seed: int) -> np.ndarray:
        x, mk = self._standard(values, mask)
        out = torch.empty((m, *x.shape))
        with single_thread(), torch.no_grad():
            for rows in self._chunks(len(x), seed):
                out[:, rows] = sir_draws(self.net_, x[rows], mk[rows], self.n_samples, m)
        return np.stack([self._unstandard(t) for t in out])

    def _prepare(self, X: Any) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], Any]]:
        """Encoded values, observation mask, and the function that turns fills into X's type."""
        check_is_fitted(self, "schema_")
        df, ids = self._frame(X)
        values, mask = self.encoder_.encode(df)
        empty = mask.sum(1) == 0
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} row(s) have no observed value; they get the model's mean "
                "row (or a draw from the model with sample_posterior=True)",
                ImputationWarning,
                stacklevel=3,
            )

        def finish(filled: np.ndarray) -> Any:
            return join_identifiers(self._to_output(df, filled, mask), ids, self.schema_)

        return values, mask, finish

    def _to_output(self, df: pd.DataFrame, filled: np.ndarray, mask: np.ndarray) -> Any:
        decoded = self.encoder_.decode(filled, clip=self.clip)
        out = df.copy()
        for j, col in enumerate(self.schema_.columns):
            missing = mask[:, j] == 0
            column = pd.to_numeric(out[col.name], errors="coerce").astype(np.float64)
            column[missing] = decoded[col.name].to_numpy()[missing]
            out[col.name] = column
        if not self.schema_.frame:
            return out.to_numpy(dtype=np.float64)
        for col in self.schema_.columns:
            if col.kind == "integer" and col.dtype.lower().startswith(("int", "uint")):
                out[col.name] = out[col.name].astype(col.dtype)
        return out

    # ------------------------------------------------------------------------- save / load
    def save(self, directory: str | Path) -> Path:
        """Write `model.safetensors` (network, scaling) + `model.json` (kind, schema, params)."""
        check_is_fitted(self, "schema_")
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        tensors["mean"] = torch.from_numpy(np.asarray(self.mean_, dtype=np.float64))
        tensors["std"] = torch.from_numpy(np.asarray(self.std_, dtype=np.float64))
        params = dict(self.get_params())
        del params["run_dir"]  # where this machine trained it: not part of the model
        for key in ("integer_columns", "identifier_columns"):
            if params[key] is not None and not isinstance(params[key], str):
                params[key] = [str(c) for c in params[key]]
        spec = {
            "kind": MIWAE_KIND,
            "schema": self.schema_.to_dict(),
            "params": params,
            "fitted": {
                "width": int(self.net_.width),
                "latent": self.latent_dim_,
                "best_step": int(self.best_step_),
                "n_rows": int(self.n_rows_),
            },
        }
        return write_model_dir(directory, tensors, spec)

    @classmethod
    def load(cls, directory: str | Path) -> MIWAEImputer:
        """Load a saved imputer (hash-checked, no pickle); the spec is checked against the
        weights' shapes before any network is built."""

        def build(spec: dict[str, Any]) -> MIWAENet:
            fitted, params = spec["fitted"], spec["params"]
            return MIWAENet(
                fitted["width"], fitted["latent"], params["hidden"], params["likelihood"]
            )

        def check(path: Path, spec: dict[str, Any]) -> None:
            fitted, where = spec["fitted"], f"{path}/model.json fitted"
            check_bounds(where, fitted, {"width": (1, 1 << 16), "latent": (1, 1 << 16)})
            check_bounds(where, spec["params"], {"hidden": (1, 1 << 16)})
            width = fitted["width"]
            if TableSchema.from_dict(spec["schema"]).width != width:
                raise CheckpointError(f"{where}: width {width} does not match the schema")
            shapes = weight_shapes(path)
            for name in ("mean", "std"):
                if shapes.get(name) != (width,):
                    raise CheckpointError(f"{path}: tensor {name!r} is not of shape ({width},)")
            check_module_fits(lambda: build(spec), shapes, prefix="net.", where=where)

        tensors, spec = read_model_dir(directory, (MIWAE_KIND,), check=check)
        try:
            model = cls(**spec["params"])
            model.schema_ = TableSchema.from_dict(spec["schema"])
            model.encoder_ = MinMaxEncoder(model.schema_)
            model.latent_dim_ = spec["fitted"]["latent"]
            model.best_step_ = spec["fitted"]["best_step"]
            model.n_rows_ = spec["fitted"]["n_rows"]
            model.mean_, model.std_ = tensors["mean"].numpy(), tensors["std"].numpy()
            model.net_ = build(spec)
            model.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k[:4] == "net."})
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{directory}: incomplete or inconsistent imputer ({exc})"
            ) from exc
        model.net_.eval()
        model.n_features_in_ = len(model.schema_.order)
        if model.schema_.frame:
            model.feature_names_in_ = np.array(model.schema_.order, dtype=object)
        model.history_ = []
        return model
