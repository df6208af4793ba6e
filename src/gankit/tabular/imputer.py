"""`GANImputer`: GAIN's hint-discriminator game played by a generator that starts from the
exact conditional expectation under a Gaussian mixture, trained as a denoiser and early-stopped
on held-out rows.

Why not plain GAIN (Yoon et al., ICML 2018)? On small tables GAIN loses to linear chained
equations (MICE): its generator must learn every conditional E[x_m | x_o] from a few hundred
rows, starting from zeros. Here the generator's input and skip path is that expectation under a
Gaussian mixture fitted by EM to the observed entries (`gaussian.py`; ridge and number of
components chosen on hidden observed entries), and the network learns a correction with

* GAIN's discriminator on [x_hat, hint] (hint rate, mask prediction, min-max scaling),
* a *denoising* reconstruction loss: observed entries are hidden at random and the generator is
  scored on recovering them (GAIN's alpha-loss only scores entries the generator can see),
* early stopping on rows held out from the network: when the correction does not help on
  held-out rows, the chosen step is 0 and the model is the mixture's conditional expectation
  (measured: on breast, wine and iris this is what happens in most fits),
* multiple imputation: `sample_posterior=True` draws from the conditional distribution and the
  generator's noise; the point estimate averages `n_draws` generator completions.

scikit-learn compatible: `fit`, `transform`, `fit_transform`, `get_feature_names_out`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
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
from gankit.models.tabular.gain import HintGame, Refiner, SeededRows
from gankit.registry import IMPUTER
from gankit.tabular.gaussian import (
    conditional_mean,
    draw_mixture_parameters,
    fit_gaussian_em,
    fit_mixture_em,
    fit_self_masking,
    mixture_conditional_draw,
    mixture_conditional_mean,
    tilted_conditional_draw,
    tilted_conditional_mean,
)
from gankit.tabular.transform import (
    MinMaxEncoder,
    TableSchema,
    as_frame,
    conform,
    infer_schema,
    join_identifiers,
    split_identifiers,
)

RIDGE_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
MAX_COMPONENTS = 4
STAGES = ("full", "mixture", "network")
MECHANISMS = ("mar", "self-masking")
# Self-masking fits (Monte-Carlo EM, `gaussian.fit_self_masking`): iterations, proposals drawn
# per row and iteration, and the importance samples behind a conditional mean / one draw.
MNAR_ITERS = 20
MNAR_PROPOSALS = 32
MNAR_MEAN_SAMPLES = 256
MNAR_DRAW_SAMPLES = 64
# The ridge chosen for random holes, capped in the self-masking EM: added to the covariances at
# every M-step it widens the tilted conditional, which lifts the completions and the slopes with
# them (wine MNAR seed 2: ridge 1e-2, slopes 1.4x the truth, fills +0.3 to +0.9 sd too high).
MNAR_MAX_RIDGE = 1e-3
MNAR_POLISH = True
MNAR_BOOTSTRAP = 5  # refits behind the parameter uncertainty of self-masking draws
# Caps on the work of a fit (issue 15: a 1,797 x 61 table took 6 minutes): the ridge and the
# number of components are chosen on at most SELECT_CELLS / width rows (1,000 rows at 32
# columns, 500 at 64: the E-step's cost grows with rows x width^3), the mixture's EM on at most
# FIT_ROWS rows, the network's denoising pool and held-out set have at most POOL_ROWS and
# VAL_ROWS rows. Tables below the caps are fitted exactly as before.
SELECT_CELLS = 32_000
FIT_ROWS = 20_000
POOL_ROWS = 20_000
VAL_ROWS = 2000
SPEC_KIND = IMPUTER
# A generator step replaces the current best only if it lowers the held-out error by 1%:
# smaller "gains" were selection noise on 30-row validation sets (measured on iris).
MIN_GAIN = 0.01
# The network replaces the mixture only if its cross-fitted held-out gain is GUARD_Z standard
# errors above zero (one-sided, ~2% false keeps when it does not help); `cross_fit_guard`.
GUARD_Z = 2.0
VAL_REPS = 8  # random hidings of each held-out row
FAST_ROWS = 8  # `transform` of at most this many numeric rows goes through `NumpyMixture`
LOG_2PI = math.log(2.0 * math.pi)


def cross_fit_guard(row_gains: list[torch.Tensor], count: float, seed: int) -> dict[str, float]:
    """Is the network's held-out gain over the mixture more than noise? A 2-fold cross-fit
    paired test (issue 15: the best of ~30 noisy checkpoints, scored on the rows that chose it,
    looks better than it is; on 30-row tables it cost up to 6% on the test entries).

    `row_gains[c][i]`: held-out row i's squared-error gain over the mixture at checkpoint c
    (summed over its hidden entries). The rows are split in two halves at random; each half
    picks its best checkpoint (the mixture, gain 0, included) and is scored on the *other*
    half's choice, so every row's gain is that of a step chosen without it. z = the mean of
    these gains over rows / its standard error; `count` (hidden entries) scales the gain to a
    per-entry mean squared error."""
    gains = torch.stack(row_gains)  # (checkpoints, rows)
    rows = gains.shape[1]
    if rows < 4 or count == 0:
        return {"gain": 0.0, "z": 0.0, "rows": rows}
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    halves = (order[: rows // 2], order[rows // 2 :])
    crossed = torch.empty(rows, dtype=gains.dtype)
    for chooser, scored in (halves, halves[::-1]):
        best = int(gains[:, chooser].sum(1).argmax())
        crossed[scored] = gains[best, scored] if gains[best, chooser].sum() > 0 else 0.0
    mean, se = float(crossed.mean()), float(crossed.std()) / math.sqrt(rows)
    z = mean / se if se > 0 else math.copysign(math.inf, mean) if mean else 0.0
    return {"gain": float(crossed.sum()) / count, "z": z, "rows": rows}


class NumpyMixture:
    """The fitted mixture in NumPy with each component's precision matrix and log-determinant
    computed once, for `transform` on a few rows (issue 15: one row on a 2,000 x 64 fit took
    1.15 ms, most of it ~40 small torch calls and a d x d Cholesky per call; goal 1 ms).

    Same arithmetic as `gaussian.mixture_conditional_mean` (precision, its missing block, one
    solve per row and component), rounded to float32 as that path is, so a row gets the same
    fill through either path."""

    def __init__(self, imputer: GANImputer) -> None:
        self.source = (imputer.weights_, imputer.mus_, imputer.sigmas_, imputer.schema_)
        chols = [torch.linalg.cholesky_ex(s)[0] for s in imputer.sigmas_]
        self.precision = [torch.cholesky_inverse(c).numpy() for c in chols]
        self.logdet = [float(2.0 * torch.log(torch.diagonal(c)).sum()) for c in chols]
        self.mus = imputer.mus_.numpy()
        self.logw = torch.log(imputer.weights_).numpy()
        self.lo, self.span, self.whole = imputer._numeric_scale()
        self.any_whole = bool(self.whole.any())
        self.width = len(self.mus[0])

    def current(self, imputer: GANImputer) -> bool:
        """Still the imputer's mixture and schema (not refitted or replaced since)."""
        now = (imputer.weights_, imputer.mus_, imputer.sigmas_, imputer.schema_)
        return all(a is b for a, b in zip(self.source, now, strict=True))

    def conditional_mean(self, values: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """E[x | observed] per row (observed entries kept), float32-rounded."""
        out = values.copy()
        for i in range(len(values)):
            miss = ~seen[i]
            if not miss.any():
                continue
            fills, logp = [], []
            for k, precision in enumerate(self.precision):
                centred = np.where(seen[i], values[i] - self.mus[k], 0.0)
                h = precision @ centred
                block = precision[np.ix_(miss, miss)]
                y = np.linalg.solve(block, h[miss])
                fills.append(self.mus[k][miss] - y)
                if len(self.precision) > 1:
                    logdet = (
                        self.logdet[k] + 2.0 * np.log(np.linalg.cholesky(block).diagonal()).sum()
                    )
                    quad = centred @ h - h[miss] @ y
                    observed = float(seen[i].sum())
                    logp.append(self.logw[k] - 0.5 * (quad + logdet + observed * LOG_2PI))
            if logp:
                resp = np.exp(np.array(logp) - max(logp))
                out[i, miss] = (resp / resp.sum()) @ np.array(fills)
            else:
                out[i, miss] = fills[0]
        return out.astype(np.float32).astype(np.float64)


def _subsample(
    x: torch.Tensor, m: torch.Tensor, cap: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most `cap` random rows (all rows, in order, when there are fewer)."""
    if len(x) <= cap:
        return x, m
    rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:cap]
    return x[rows], m[rows]


class _Stage:
    """With `verbose`, one line per finished stage of a fit, with its seconds (the network's
    stage has the engine's progress bar)."""

    def __init__(self, verbose: bool, rows: int, width: int) -> None:
        self.verbose, self.start = verbose, time.perf_counter()
        if verbose:
            print(f"GANImputer: fitting {rows} x {width}", file=sys.stderr, flush=True)

    def done(self, what: str) -> None:
        if self.verbose:
            seconds = time.perf_counter() - self.start
            print(f"GANImputer: {what} done at {seconds:.1f} s", file=sys.stderr, flush=True)


class ImputationWarning(UserWarning):
    """A documented fallback was used (e.g. a row with no observed value got the column means)."""


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Small MLPs run ~10x faster on one thread than on two (measured); restore afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ImputerBase(TransformerMixin, BaseEstimator):
    """What gankit's imputers share (GANImputer, MIWAEImputer): the fitted column names,
    scikit-learn's NaN-tolerant tags, and X read as a frame of the fitted schema."""

    def _frame(self, X: Any) -> tuple[pd.DataFrame, Any]:
        """X conformed to the fitted schema, and its identifier columns set aside."""
        df, _ = as_frame(X)
        df, ids = split_identifiers(df, self.schema_)
        return conform(df, self.schema_, type(self).__name__), ids

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Imputation keeps the columns: the fitted names (identifier columns included)."""
        check_is_fitted(self, "schema_")
        return np.array(self.schema_.order, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class GANImputer(ImputerBase):
    """Impute NaNs with a Gaussian-conditioned GAIN; see the module docstring.

    Parameters: `n_steps` (most generator steps; early stopping may use fewer), `batch_size`,
    `hint_rate`, `alpha` (weight of the denoising loss against the adversarial loss),
    `adversarial_weight`, `hidden` (MLP width; default max(64, 2*width)), `lr`, `patience`
    (steps without validation gain before stopping), `ridge` ("auto" picks from RIDGE_GRID on
    held-out entries), `stages` ("full": mixture fill + network; "mixture": the mixture's
    conditional expectation alone; "network": the network refines the column means, no
    cross-column mixture — the last two are the benchmark's ablations), `n_draws`
    (completions averaged for the point estimate),
    `sample_posterior` (return one random completion instead), `categorical_columns`,
    `integer_columns` ("auto": integer dtypes and columns whose observed values are all whole),
    `missing_mechanism` ("mar": whether an entry is missing depends on observed values only;
    "self-masking": an entry's chance to be missing depends on its own value, as when large
    incomes go unreported — a per-column logistic model P(missing | x_j) is fitted jointly with
    the mixture, and fills and draws come from the conditional tilted by it; the network stage
    is then skipped, since it learns from entries hidden at random),
    `clip` (keep values inside the observed range; under self-masking, posterior draws stay
    open on the side where the mechanism hides values), `identifier_columns` (names or indices of
    identifier / free-text columns: left out of the model and passed through untouched by
    `transform`; an undeclared one is refused at fit), `run_dir` (checkpoints and metrics.jsonl
    of the adversarial stage go there; `fit(X, resume=True)` continues from it), `verbose` (a
    progress bar), `device` ("cpu", "cuda", "auto"), `random_state`.
    """

    def __init__(
        self,
        n_steps: int = 1500,
        batch_size: int = 256,
        hint_rate: float = 0.9,
        alpha: float = 10.0,
        adversarial_weight: float = 0.1,
        hidden: int | None = None,
        lr: float = 3e-3,
        patience: int = 300,
        ridge: float | str = "auto",
        n_components: int | str = "auto",
        stages: str = "full",
        missing_mechanism: str = "mar",
        n_draws: int = 8,
        sample_posterior: bool = False,
        categorical_columns: Sequence[Any] | None = None,
        integer_columns: Sequence[Any] | str | None = "auto",
        clip: bool = True,
        identifier_columns: Sequence[Any] | None = None,
        run_dir: str | None = None,
        verbose: bool = False,
        device: str = "cpu",
        random_state: int | None = None,
    ) -> None:
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.hint_rate = hint_rate
        self.alpha = alpha
        self.adversarial_weight = adversarial_weight
        self.hidden = hidden
        self.lr = lr
        self.patience = patience
        self.ridge = ridge
        self.n_components = n_components
        self.stages = stages
        self.missing_mechanism = missing_mechanism
        self.n_draws = n_draws
        self.sample_posterior = sample_posterior
        self.categorical_columns = categorical_columns
        self.integer_columns = integer_columns
        self.clip = clip
        self.identifier_columns = identifier_columns
        self.run_dir = run_dir
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    # ----------------------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, resume: bool = False) -> GANImputer:
        """Learn the schema, the Gaussian and the generator from the observed entries of X.

        With `resume`, the adversarial stage continues from the checkpoint in `run_dir` (same
        X, same parameters: everything before it is recomputed identically)."""
        self._check_params()
        df, frame = as_frame(X)
        schema = infer_schema(
            df, frame, self.categorical_columns, self.integer_columns, self.identifier_columns
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
        seed = int(np.random.default_rng(self.random_state).integers(2**31))
        with single_thread():
            self._fit_arrays(values, mask, seed, resume)
        self.schema_ = schema
        self.encoder_ = encoder
        self.n_features_in_ = len(schema.order)
        if frame:
            self.feature_names_in_ = np.array(schema.order, dtype=object)
        self._build_fast()
        return self

    def _build_fast(self) -> None:
        """The NumPy copy of the mixture for few-row transforms (numeric tables only)."""
        numeric = all(c.kind != "categorical" for c in self.schema_.columns)
        self._fast = NumpyMixture(self) if numeric else None

    def _check_params(self) -> None:
        checks = {
            "n_steps": self.n_steps >= 0,
            "batch_size": self.batch_size >= 1,
            "hint_rate": 0.0 <= self.hint_rate <= 1.0,
            "alpha": 0 <= self.alpha < math.inf,
            "adversarial_weight": 0 <= self.adversarial_weight < math.inf,
            "n_draws": self.n_draws >= 1,
            "patience": self.patience >= 1,
            "lr": 0 < self.lr < math.inf,
            "hidden": self.hidden is None or 1 <= self.hidden <= 1 << 16,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"GANImputer: invalid {name}={getattr(self, name)!r}")
        finite_ridge = isinstance(self.ridge, float | int) and 0 < self.ridge < math.inf
        if self.stages not in STAGES:
            raise ConfigError(f"GANImputer: stages must be one of {STAGES}, got {self.stages!r}")
        if self.missing_mechanism not in MECHANISMS:
            raise ConfigError(
                f"GANImputer: missing_mechanism must be one of {MECHANISMS}, "
                f"got {self.missing_mechanism!r}"
            )
        if self.missing_mechanism == "self-masking" and self.stages == "network":
            raise ConfigError(
                "GANImputer: missing_mechanism='self-masking' models the missingness inside the "
                "mixture stage; use stages='full' or 'mixture'"
            )
        if not (self.ridge == "auto" or finite_ridge):
            raise ConfigError(f"GANImputer: ridge must be 'auto' or > 0, got {self.ridge!r}")

    def _fit_arrays(self, values: np.ndarray, mask: np.ndarray, seed: int, resume: bool) -> None:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        x = torch.from_numpy(values)
        m = torch.from_numpy(mask)
        self.missing_rate_ = float(1.0 - m.mean())
        self.n_rows_ = len(x)
        p_drop = min(max(self.missing_rate_, 0.1), 0.5)
        if self.stages == "network":  # a diagonal Gaussian: its conditional mean is the means
            self.n_components_, self.ridge_ = 1, 1e-3 if self.ridge == "auto" else self.ridge
            counts = m.sum(0).clamp_min(1.0)
            mean = (m * x).sum(0) / counts
            var = (m * (x - mean) ** 2).sum(0) / counts + self.ridge_
            self.weights_ = torch.ones(1, dtype=x.dtype)
            self.mus_, self.sigmas_ = mean.unsqueeze(0), torch.diag(var).unsqueeze(0)
        else:
            progress = _Stage(self.verbose, len(x), x.shape[1])
            select_rows = max(200, SELECT_CELLS // x.shape[1])
            xs, ms = _subsample(x, m, select_rows, seed + 1)
            self.n_components_, self.ridge_ = self._select_model(xs, ms, p_drop, gen, seed)
            progress.done("mixture selection")
            xs, ms = _subsample(x, m, FIT_ROWS, seed + 2)
            self.weights_, self.mus_, self.sigmas_ = fit_mixture_em(
                xs, ms, self.n_components_, ridge=self.ridge_, iters=50, seed=seed
            )
            progress.done(f"mixture EM ({self.n_components_} components, {len(xs)} rows)")
        self.mechanism_: torch.Tensor | None = None
        if self.missing_mechanism == "self-masking":
            mixture, self.mechanism_ = fit_self_masking(
                xs,
                ms,
                (self.weights_, self.mus_, self.sigmas_),
                min(self.ridge_, MNAR_MAX_RIDGE),
                MNAR_ITERS,
                MNAR_PROPOSALS,
                seed=seed + 3,
                polish_ridge=self.ridge_ if MNAR_POLISH else None,
            )
            self.weights_, self.mus_, self.sigmas_ = mixture
            self.boot_ = self._bootstrap_self_masking(xs, ms, seed)
            progress.done(f"self-masking mechanism (Monte-Carlo EM, {MNAR_BOOTSTRAP} refits)")
        width = x.shape[1]
        self.hidden_ = int(self.hidden or max(64, 2 * width))
        self.generator_ = Refiner(width, self.hidden_)
        self.history_: list[dict[str, float]] = []
        self.best_step_ = 0
        self.guard_: dict[str, float] = {}
        trains = self.stages != "mixture" and self.mechanism_ is None
        if self.n_steps > 0 and len(x) >= 10 and trains:
            self._train_gan(x, m, p_drop, gen, resume)
        self.generator_.eval()

    def _fit_self_masking(
        self, xs: torch.Tensor, ms: torch.Tensor, seed: int
    ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """The mixture and the mechanism fitted jointly (`gaussian.fit_self_masking`) from a MAR
        mixture with the selected components and ridge."""
        mixture = fit_mixture_em(xs, ms, self.n_components_, ridge=self.ridge_, iters=50, seed=seed)
        return fit_self_masking(
            xs,
            ms,
            mixture,
            min(self.ridge_, MNAR_MAX_RIDGE),
            MNAR_ITERS,
            MNAR_PROPOSALS,
            seed=seed + 3,
            polish_ridge=self.ridge_ if MNAR_POLISH else None,
        )

    def _bootstrap_self_masking(
        self, xs: torch.Tensor, ms: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        """MNAR_BOOTSTRAP refits of the self-masking model on rows drawn with replacement,
        stacked: posterior draws each take one, so the spread between completed tables carries
        the mechanism's uncertainty and its coupling with the mixture, which the Gaussian
        posterior of `draw_mixture_parameters` alone does not (MNAR coverage, 3 seeds: iris
        0.84 -> 0.89, breast-nl 0.82 -> 0.89; benchmarks.md "Third issue-15 session")."""
        gen = torch.Generator().manual_seed(seed + 7)
        fits = []
        for b in range(MNAR_BOOTSTRAP):
            rows = torch.randint(len(xs), (len(xs),), generator=gen)
            fits.append(self._fit_self_masking(xs[rows], ms[rows], seed + 11 + b))
        return {
            "weights": torch.stack([f[0][0] for f in fits]),
            "mus": torch.stack([f[0][1] for f in fits]),
            "sigmas": torch.stack([f[0][2] for f in fits]),
            "mechanism": torch.stack([f[1] for f in fits]),
        }

    def _select_model(
        self, x: torch.Tensor, m: torch.Tensor, p_drop: float, gen: torch.Generator, seed: int
    ) -> tuple[int, float]:
        """Choose the ridge and the number of mixture components on hidden observed entries.

        The ridge is scanned with one component (warm-started EM fits), then 2, 3, ... components
        are tried with that ridge and 10x it until one fails to lower the held-out error by
        MIN_GAIN: simpler models win ties.
        """
        hide = m * (torch.rand(m.shape, generator=gen, dtype=m.dtype) < p_drop)
        kept = m - hide
        keep_row = kept.sum(1) == 0
        kept[keep_row] = m[keep_row]
        hide = m - kept
        fixed_k = None if self.n_components == "auto" else int(self.n_components)
        if hide.sum() == 0:
            return fixed_k or 1, 1e-3 if self.ridge == "auto" else float(self.ridge)

        def score(fill: torch.Tensor) -> float:
            return float((hide * (fill.clamp(0.0, 1.0) - x) ** 2).sum() / hide.sum())

        if self.ridge == "auto":
            scores, state = {}, None
            for ridge in sorted(RIDGE_GRID, reverse=True):
                state = fit_gaussian_em(x, kept, ridge=ridge, iters=20, init=state)
                scores[ridge] = score(conditional_mean(x, kept, *state))
            ridge = min(scores, key=scores.__getitem__)
            ridges = [ridge, ridge * 10]
            best = (1, ridge, scores[ridge])
        else:
            ridges = [float(self.ridge)]
            best = (1, ridges[0], math.inf)
        if fixed_k is not None:
            return fixed_k, best[1]
        for k in range(2, min(MAX_COMPONENTS, len(x) // 10) + 1):
            trial = min(
                (
                    (
                        k,
                        r,
                        score(
                            mixture_conditional_mean(
                                x, kept, *fit_mixture_em(x, kept, k, ridge=r, iters=20, seed=seed)
                            )
                        ),
                    )
                    for r in ridges
                ),
                key=lambda t: t[2],
            )
            if trial[2] >= best[2] * (1.0 - MIN_GAIN):
                break
            best = trial
        return best[0], best[1]

    def _drop_pool(
        self, x: torch.Tensor, m: torch.Tensor, p_drop: float, reps: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        """Rows with extra observed entries hidden, their Gaussian fill, and the target mask."""
        xr, mr = x.repeat(reps, 1), m.repeat(reps, 1)
        seen = mr * (torch.rand(mr.shape, generator=gen, dtype=mr.dtype) >= p_drop)
        fill = mixture_conditional_mean(xr, seen, self.weights_, self.mus_, self.sigmas_)
        return xr.float(), seen.float(), fill.float(), (mr - seen).float()

    def _train_gan(
        self, x: torch.Tensor, m: torch.Tensor, p_drop: float, gen: torch.Generator, resume: bool
    ) -> None:
        """GAIN's game on denoising batches, on the engine; keep the generator that is best on
        held-out rows (the early-stopping callback scores them every 50 steps)."""
        n = len(x)
        perm = torch.randperm(n, generator=gen)
        n_val = max(int(0.2 * n), 5)
        val, train = perm[:n_val], perm[n_val:]
        # at most POOL_ROWS denoising rows (8 copies of each row on small tables) and 8 copies
        # (random hidings) of at most VAL_ROWS held-out rows: a fixed cost however long the table
        train = train[:POOL_ROWS]
        val = val[:VAL_ROWS]
        reps = max(1, min(8, POOL_ROWS // len(train)))
        pool = self._drop_pool(x[train], m[train], p_drop, reps, gen)
        self.generator_.shift.copy_(pool[2].mean(0))
        self.generator_.scale.copy_(pool[2].std(0).clamp_min(1e-3))
        vx, vseen, vfill, vtarget = self._drop_pool(x[val], m[val], p_drop, VAL_REPS, gen)
        seed = int(torch.randint(2**31, (1,), generator=gen))
        model = HintGame(
            x.shape[1],
            self.hidden_,
            lr=self.lr,
            hint_rate=self.hint_rate,
            alpha=self.alpha,
            adversarial_weight=self.adversarial_weight,
            seed=seed,
            generator=self.generator_,
        )
        rows = dict(zip(("x", "seen", "fill", "target"), pool, strict=True))
        provider = SeededRows(rows, self.batch_size, seed + 1)

        base = vtarget * (vfill.clamp(0.0, 1.0) - vx) ** 2  # the mixture's squared errors
        row_gains: list[torch.Tensor] = []  # per checkpoint: each held-out row's gain

        def held_out_score() -> float:
            with torch.no_grad():
                G = model.networks["g"]
                out = G(*(t.to(model.device) for t in (vfill, vseen, torch.zeros_like(vfill))))
                out = out.cpu()
                err = (vtarget * (out - vx) ** 2).sum() / vtarget.sum().clamp_min(1.0)
                gain = (base - vtarget * (out.clamp(0.0, 1.0) - vx) ** 2).sum(1)
                row_gains.append(gain.view(VAL_REPS, -1).sum(0).double())
            return -float(err)

        stopping = EarlyStopping(
            held_out_score, "g", every=50, patience=self.patience, min_gain=MIN_GAIN, at_start=True
        )
        settings = estimator_settings(self.n_steps, seed, device=self.device, verbose=self.verbose)
        fit_model(model, provider, settings, self.run_dir, callbacks=[stopping], resume_run=resume)
        self.generator_ = model.networks["g"].cpu()
        self.best_step_ = int(stopping.best_step or 0)
        self.history_ = [{"step": h["step"], "val_mse": -h["score"]} for h in stopping.history]
        self._held_out_gains = torch.stack(row_gains).numpy() if row_gains else None
        if self.best_step_ > 0:
            self.guard_ = cross_fit_guard(row_gains, float(vtarget.sum()), seed)
            self.guard_["step"] = self.best_step_
            if self.guard_["z"] < GUARD_Z:
                self.best_step_ = 0

    # ---------------------------------------------------------------------------- imputing
    def transform(self, X: Any) -> Any:
        """Fill the NaNs of X (a new table is returned; X is not modified)."""
        fast = self._fast_fill(X)
        if fast is not None:
            return fast
        values, mask, finish = self._prepare(X)
        with single_thread(), torch.no_grad():
            filled = self._impute_arrays(values, mask, self._first_seed())
        return finish(filled)

    def _fast_fill(self, X: Any) -> np.ndarray | None:
        """A few numeric rows filled by the mixture's conditional mean in NumPy (no pandas; torch
        only for a kept network step), or None when another path applies (more rows,
        posterior draws, self-masking, categorical columns, a refitted mixture)."""
        fast = self.__dict__.get("_fast")
        if (
            fast is None
            or not isinstance(X, np.ndarray)
            or X.ndim != 2
            or len(X) > FAST_ROWS
            or X.shape[1] != fast.width
            or X.dtype.kind not in "fiu"
            or self.sample_posterior
            or self.__dict__.get("mechanism_") is not None
            or not fast.current(self)
        ):
            return None
        raw = X.astype(np.float64)
        nan = np.isnan(raw)
        if np.isinf(raw).any():
            self._encode_numeric(raw)  # raises the DataError naming the column
        values = np.where(nan, 0.0, (raw - fast.lo) / fast.span)
        self._warn_empty(~nan, stacklevel=4)
        filled = fast.conditional_mean(values, ~nan)
        if self.best_step_:
            mean = torch.from_numpy(filled).float()
            with single_thread(), torch.no_grad():
                filled = self._refine(mean, (~nan).astype(np.float64), self._seeds(1)[0])
        if self.clip:
            filled = np.minimum(np.maximum(filled, 0.0), 1.0)
        filled = filled * fast.span + fast.lo
        if fast.any_whole:
            filled[:, fast.whole] = np.round(filled[:, fast.whole])
        return np.where(nan, filled, raw)

    def _first_seed(self) -> int:
        """The seed of `transform`'s completion; 0 (unused) when the fill is deterministic."""
        mechanism = self.__dict__.get("mechanism_")
        if not self.sample_posterior and not self.best_step_ and mechanism is None:
            return 0
        return self._seeds(1)[0]

    def transform_numeric(self, X: Any) -> np.ndarray:
        """The pandas-free path for a model without categorical columns, fitted on an array or
        on a DataFrame: X is an (n, width) float array of the fitted columns in order
        (identifier columns excluded, NaN = missing); returns the filled float array.
        `gankit serve` answers one-row requests through it (pandas cost ~40x the model)."""
        fast = self._fast_fill(X)
        if fast is not None:
            return fast
        check_is_fitted(self, "schema_")
        raw = np.asarray(X, dtype=np.float64)
        width = len(self.schema_.columns)
        if any(c.kind == "categorical" for c in self.schema_.columns):
            raise DataError("transform_numeric: the model has categorical columns; use transform")
        if raw.ndim != 2 or raw.shape[1] != width:
            raise DataError(f"transform_numeric: expected an (n, {width}) array, got {raw.shape}")
        raw, values, mask = self._encode_numeric(raw)
        self._warn_empty(mask)
        with single_thread(), torch.no_grad():
            filled = self._impute_arrays(values, mask, self._first_seed())
        return self._decode_numeric(raw, filled)

    def transform_multiple(self, X: Any, m: int = 5) -> list[Any]:
        """`m` completed tables for multiple imputation (Rubin's rules), each a posterior draw.

        Every table draws the mixture's parameters from their approximate posterior, then the
        missing entries from the conditional distribution (plus the generator's correction), as
        `sample_posterior=True` does; table 0 equals `transform` with `sample_posterior=True`
        and the same `random_state`. Seeded: the same `random_state` gives the same tables."""
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
            raise ConfigError(f"transform_multiple: m must be a whole number >= 1, got {m!r}")
        values, mask, finish = self._prepare(X)
        tables = []
        with single_thread(), torch.no_grad():
            mean = self._conditional_mean(values, mask, 0) if self.best_step_ else None
            for seed in self._seeds(int(m)):
                tables.append(finish(self._posterior_draw(values, mask, mean, seed)))
        return tables

    def _seeds(self, m: int) -> list[int]:
        """Seeds of successive completions; the first is the one `transform` uses."""
        rng = np.random.default_rng(self.random_state)
        return [int(rng.integers(2**31)) for _ in range(m)]

    def _prepare(self, X: Any) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], Any]]:
        """Encoded values, observation mask, and the function that turns fills into X's type."""
        check_is_fitted(self, "schema_")
        if self._numeric_array(X):
            raw, values, mask = self._encode_numeric(X)
            self._warn_empty(mask)
            return values, mask, lambda filled: self._decode_numeric(raw, filled)
        df, ids = self._frame(X)
        values, mask = self.encoder_.encode(df)
        self._warn_empty(mask)

        def finish(filled: np.ndarray) -> Any:
            return join_identifiers(self._to_output(df, filled, mask), ids, self.schema_)

        return values, mask, finish

    def _numeric_array(self, X: Any) -> bool:
        """A float/int ndarray for a model fitted on numbers only: the pandas-free fast path."""
        return (
            isinstance(X, np.ndarray)
            and X.ndim == 2
            and X.dtype.kind in "fiu"
            and X.shape[1] == len(self.schema_.columns)
            and all(c.kind != "categorical" for c in self.schema_.columns)
        )

    def _encode_numeric(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The raw float table, its min-max scaled values (0 where missing) and the mask."""
        raw = np.asarray(X, dtype=np.float64)
        if np.isinf(raw).any():
            col = self.schema_.names[int(np.argwhere(np.isinf(raw))[0, 1])]
            raise DataError(f"column {col!r}: found inf; expected finite numbers or NaN")
        lo, span, _ = self._numeric_scale()
        seen = ~np.isnan(raw)
        values = np.where(seen, (np.nan_to_num(raw) - lo) / span, 0.0)
        return raw, values, seen.astype(np.float64)

    def _numeric_scale(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per column: minimum, span and whether it is an integer column."""
        cols = self.schema_.columns
        lo = np.array([c.min for c in cols], dtype=np.float64)
        span = np.array([(c.max - c.min) or 1.0 for c in cols], dtype=np.float64)
        return lo, span, np.array([c.kind == "integer" for c in cols])

    def _decode_numeric(self, raw: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """Scaled fills back to the table's units; observed entries returned unchanged."""
        lo, span, whole = self._numeric_scale()
        if self.clip:
            filled = self._clip_scaled(filled)
        filled = filled * span + lo
        filled[:, whole] = np.round(filled[:, whole])
        return np.where(np.isnan(raw), filled, raw)

    def _warn_empty(self, mask: np.ndarray, stacklevel: int = 4) -> None:
        empty = mask.sum(1) == 0
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} row(s) have no observed value; they get the fitted means "
                "(or a draw from the fitted distribution with sample_posterior=True)",
                ImputationWarning,
                stacklevel=stacklevel,
            )

    def _conditional_mean(self, values: np.ndarray, mask: np.ndarray, seed: int) -> torch.Tensor:
        """E[x | observed] under the fitted mixture (float64 in, float32 out); under
        self-masking, E[x | observed, mask] by importance sampling (seeded)."""
        mixture = (self.weights_, self.mus_, self.sigmas_)
        x, m = torch.from_numpy(values), torch.from_numpy(mask)
        if getattr(self, "mechanism_", None) is not None:
            gen = torch.Generator().manual_seed(seed)
            return tilted_conditional_mean(
                x, m, mixture, self.mechanism_, MNAR_MEAN_SAMPLES, gen
            ).float()
        return mixture_conditional_mean(x, m, *mixture).float()

    def _impute_arrays(self, values: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        if self.sample_posterior:
            mean = self._conditional_mean(values, mask, seed) if self.best_step_ else None
            return self._posterior_draw(values, mask, mean, seed)
        mean = self._conditional_mean(values, mask, seed)
        if self.best_step_ == 0:
            fill = mean.double().numpy()
            if self.clip and getattr(self, "mechanism_", None) is not None:
                return np.clip(fill, 0.0, 1.0)  # a point fill stays in the observed range
            return fill
        return self._refine(mean, mask, seed)

    def _refine(self, mean: torch.Tensor, mask: np.ndarray, seed: int) -> np.ndarray:
        """The point estimate with a network step: the mean of `n_draws` generator outputs."""
        gen = torch.Generator().manual_seed(seed)
        mf = torch.from_numpy(mask).float()
        k = self.n_draws
        noise = torch.rand((k, *mean.shape), generator=gen) - 0.5
        G = self.generator_
        reps = G(mean.repeat(k, 1), mf.repeat(k, 1), noise.reshape(-1, mean.shape[1]))
        return reps.reshape(k, *mean.shape).mean(0).double().numpy()

    def _posterior_draw(
        self, values: np.ndarray, mask: np.ndarray, mean: torch.Tensor | None, seed: int
    ) -> np.ndarray:
        """One proper completion: parameters from their posterior, then the missing entries from
        the conditional distribution, plus the generator's correction with fresh noise."""
        gen = torch.Generator().manual_seed(seed)
        x, m = torch.from_numpy(values), torch.from_numpy(mask)
        n_eff = self.n_rows_ * (1.0 - self.missing_rate_)
        rng = np.random.default_rng(seed)
        mixture, mechanism = (self.weights_, self.mus_, self.sigmas_), self.mechanism_
        boot = getattr(self, "boot_", None)
        if boot:  # self-masking: one of the bootstrap refits
            b = int(rng.integers(len(boot["weights"])))
            mixture = (boot["weights"][b], boot["mus"][b], boot["sigmas"][b])
            mechanism = boot["mechanism"][b]
        params = draw_mixture_parameters(*mixture, n_eff, rng)
        if mechanism is not None:
            draw = tilted_conditional_draw(
                x, m, params, mechanism, MNAR_DRAW_SAMPLES, generator=gen
            ).float()
        else:
            draw = mixture_conditional_draw(x, m, *params, generator=gen).float()
        if self.best_step_ == 0 or mean is None:
            return draw.double().numpy()
        noise = torch.rand(mean.shape, generator=gen) - 0.5
        out = draw + (self.generator_(mean, m.float(), noise) - mean)
        return out.double().numpy()

    def _clip_scaled(self, filled: np.ndarray) -> np.ndarray:
        """Scaled fills kept inside the observed range [0, 1]. Under self-masking the side where
        the fitted mechanism makes entries go missing stays open for posterior draws (the upper
        one for a slope > 0): values hidden because they are large lie above the largest
        observed one (6-22% of the hidden entries in the benchmark's MNAR tables), where
        clipped draws could never cover them. Point fills are clipped on both sides before
        (`_impute_arrays`): beyond the observed range the mixture's tail is a guess, and
        clipping it kept spiral's RMSE at 0.070 where the open side gave 0.098."""
        mechanism = getattr(self, "mechanism_", None)
        if mechanism is None:
            return np.clip(filled, 0.0, 1.0)
        slope = mechanism[0].double().numpy()
        return np.clip(filled, np.where(slope < 0, -np.inf, 0.0), np.where(slope > 0, np.inf, 1.0))

    def _to_output(self, df: pd.DataFrame, filled: np.ndarray, mask: np.ndarray) -> Any:
        if self.clip and getattr(self, "mechanism_", None) is not None:
            decoded = self.encoder_.decode(self._clip_scaled(filled), clip=False)
        else:
            decoded = self.encoder_.decode(filled, clip=self.clip)
        out = df.copy()
        for col, sl in zip(self.schema_.columns, self.encoder_.slices, strict=True):
            missing = mask[:, sl.start] == 0
            if not missing.any():
                continue
            if col.kind == "categorical":
                column = out[col.name].astype(object)
            else:
                column = pd.to_numeric(out[col.name], errors="coerce").astype(np.float64)
            column[missing] = decoded[col.name].to_numpy()[missing]
            out[col.name] = column
        if self.schema_.frame:
            return self._restore_dtypes(out)
        if any(c.kind == "categorical" for c in self.schema_.columns):
            return out.to_numpy(dtype=object)
        return out.to_numpy(dtype=np.float64)

    def _restore_dtypes(self, out: pd.DataFrame) -> pd.DataFrame:
        for col in self.schema_.columns:
            if col.kind == "integer" and out[col.name].notna().all():
                target = col.dtype if col.dtype.lower().startswith(("int", "uint")) else None
                if target:
                    out[col.name] = out[col.name].astype(target)
            elif col.kind != "categorical" and out[col.name].dtype == object:
                out[col.name] = pd.to_numeric(out[col.name])
        return out

    def use_refiner(self, refiner: Any) -> GANImputer:
        """Run the fitted refiner through another runtime: any callable with the network's
        signature (fill, mask, noise) -> completed rows, e.g. `gankit.export.OrtRefiner`."""
        check_is_fitted(self, "schema_")
        self.generator_ = refiner
        return self

    # ------------------------------------------------------------------------- save / load
    def save(self, directory: str | Path) -> Path:
        """Write `model.safetensors` + `model.json` (the imputer kind, with the schema)."""
        check_is_fitted(self, "schema_")
        tensors = {"weights": self.weights_, "mus": self.mus_, "sigmas": self.sigmas_}
        if getattr(self, "mechanism_", None) is not None:
            tensors["mechanism"] = self.mechanism_
        for key, value in (getattr(self, "boot_", None) or {}).items():
            tensors[f"boot.{key}"] = value
        tensors.update({f"generator.{k}": v for k, v in self.generator_.state_dict().items()})
        params = {k: v for k, v in self.get_params().items()}
        for key in ("categorical_columns", "integer_columns", "identifier_columns"):
            if params[key] is not None and not isinstance(params[key], str):
                params[key] = [str(c) for c in params[key]]
        spec = {
            "kind": SPEC_KIND,
            "schema": self.schema_.to_dict(),
            "params": params,
            "fitted": {
                "ridge": float(self.ridge_),
                "hidden": self.hidden_,
                "best_step": self.best_step_,
                "missing_rate": self.missing_rate_,
                "n_rows": self.n_rows_,
                "standardized": bool(getattr(self.generator_, "standardized", False)),
                "width": int(self.mus_.shape[1]),
                "n_components": self.n_components_,
                "n_boot": len((getattr(self, "boot_", None) or {}).get("weights", ())),
            },
        }
        return write_model_dir(directory, tensors, spec)

    @classmethod
    def load(cls, directory: str | Path) -> GANImputer:
        """Load a saved imputer (hash-checked, no pickle).

        The spec is checked against the weights' shapes on the meta device before any tensor
        is read or any network built, so an edited width cannot make it allocate."""

        def check(path: Path, spec: dict[str, Any]) -> None:
            fitted, where = spec["fitted"], f"{path}/model.json fitted"
            check_bounds(where, fitted, {"width": (1, 1 << 16), "hidden": (1, 1 << 16)})
            check_bounds(where, fitted, {"n_components": (1, 1 << 10)})
            width, k = fitted["width"], fitted["n_components"]
            if TableSchema.from_dict(spec["schema"]).width != width:
                raise CheckpointError(f"{where}: width {width} does not match the schema")
            shapes = weight_shapes(path)
            expected = {"weights": (k,), "mus": (k, width), "sigmas": (k, width, width)}
            if spec["params"].get("missing_mechanism", "mar") == "self-masking":
                expected["mechanism"] = (2, width)
                check_bounds(where, fitted, {"n_boot": (0, 1 << 10)})
                if boot := fitted.get("n_boot", 0):
                    expected["boot.weights"] = (boot, k)
                    expected["boot.mus"] = (boot, k, width)
                    expected["boot.sigmas"] = (boot, k, width, width)
                    expected["boot.mechanism"] = (boot, 2, width)
            elif "mechanism" in shapes:
                raise CheckpointError(f"{path}: a 'mechanism' tensor in a MAR imputer")
            if any(name.startswith("boot.") and name not in expected for name in shapes):
                raise CheckpointError(f"{path}: bootstrap tensors the spec does not declare")
            for name, shape in expected.items():
                if shapes.get(name) != shape:
                    raise CheckpointError(
                        f"{path}: tensor {name!r} has shape {shapes.get(name)}, the spec "
                        f"implies {shape}"
                    )
            standardized = bool(fitted.get("standardized", False))
            check_module_fits(
                lambda: Refiner(width, fitted["hidden"], standardized),
                shapes,
                prefix="generator.",
                where=where,
            )

        tensors, spec = read_model_dir(directory, (SPEC_KIND,), check=check)
        try:
            model = cls(**spec["params"])
            fitted = spec["fitted"]
            model.schema_ = TableSchema.from_dict(spec["schema"])
            model.encoder_ = MinMaxEncoder(model.schema_)
            model.ridge_, model.hidden_ = fitted["ridge"], fitted["hidden"]
            model.best_step_, model.missing_rate_ = fitted["best_step"], fitted["missing_rate"]
            # saved before n_rows was recorded: 100 rows keeps posterior draws wide, not narrow
            model.n_rows_ = int(fitted.get("n_rows", 100))
            model.weights_, model.mus_ = tensors["weights"], tensors["mus"]
            model.sigmas_, model.n_components_ = tensors["sigmas"], fitted["n_components"]
            model.mechanism_ = tensors.get("mechanism")
            prefix = "boot."
            model.boot_ = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            model.guard_ = {}
            model.generator_ = Refiner(
                fitted["width"], model.hidden_, bool(fitted.get("standardized", False))
            )
            prefix = "generator."
            model.generator_.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(
                f"{directory}: incomplete or inconsistent imputer ({exc})"
            ) from exc
        model.generator_.eval()
        model.n_features_in_ = len(model.schema_.order)
        if model.schema_.frame:
            model.feature_names_in_ = np.array(model.schema_.order, dtype=object)
        model.history_ = []
        model._build_fast()
        return model
