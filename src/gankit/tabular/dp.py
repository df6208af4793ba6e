"""Differentially private training of `TabularGAN` (DP-SGD on the critic, with Opacus).

Only the critic reads real rows; the generator learns from the critic's output alone, so
making the critic's updates differentially private (Abadi et al. 2016: Poisson-sampled
batches, every row's gradient clipped to `max_grad_norm`, Gaussian noise) makes the
generator private too (post-processing). Opacus supplies the per-sample gradients
(`GradSampleModule`), the noise calibration (`get_noise_multiplier`) and the Rényi-DP
accountant (`RDPAccountant`, Mironov 2017) whose ε is reported.

What else would learn from the data is replaced or declared:

* column ranges and category sets: given by the user (`bounds`, `categories`) or declared
  public (`public=["ranges", "categories"]`); undeclared ones are an error. Values outside
  a declared range are clipped to it before training.
* mode-specific normalisation (a Gaussian mixture per column, fitted on the data): replaced
  by one mode per column spanning its range (no data used), unless `"modes"` is declared
  public.
* the category frequencies the generator is conditioned on: released once with Gaussian
  noise (one row changes one count per discrete column: L2 sensitivity sqrt(columns)); this
  release is one more step in the same RDP accountant.

The critic is DP-compatible: packs of one row (`pac=1`: PacGAN's packs mix several rows in one
example, so a row's gradient is not its own) and the logistic (non-saturating) GAN loss without
a gradient penalty (the penalty's gradient-of-a-gradient is not a per-row quantity Opacus can
clip). A per-sample unit is one real row paired with the fake row generated for its condition,
so removing a row removes exactly one clipped term.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from gankit.errors import ConfigError, DataError, require
from gankit.models.tabular.dp import DPCritic, PoissonRows
from gankit.tabular.encoders import CondSampler
from gankit.tabular.transform import ColumnInfo, TableSchema

__all__ = [
    "PUBLIC_ITEMS",
    "DPCritic",
    "DPSettings",
    "PoissonRows",
    "calibrate",
    "epsilon_spent",
    "noisy_sampler",
    "private_schema",
    "range_modes",
]

PUBLIC_ITEMS = ("ranges", "categories", "modes")
KEYS = ("epsilon", "delta", "max_grad_norm", "public", "bounds", "categories", "histogram_share")
CRITIC = "pac=1, logistic (non-saturating) loss, no gradient penalty, dropout 0.5"


@dataclass
class DPSettings:
    """A validated `dp={...}` option of `TabularGAN`.

    `epsilon`, `delta`: the target budget ((ε, δ)-DP for adding or removing one row);
    `max_grad_norm`: the per-row clipping bound C; `public`: what the user declares public
    (subset of `PUBLIC_ITEMS`); `bounds` {column: [low, high]} and `categories`
    {column: [values]}: declared instead of learned; `histogram_share`: the share of ε
    aimed at the noisy category frequencies (the rest goes to DP-SGD)."""

    epsilon: float
    delta: float
    max_grad_norm: float = 1.0
    public: list[str] = field(default_factory=list)
    bounds: dict[str, list[float]] = field(default_factory=dict)
    categories: dict[str, list[Any]] = field(default_factory=dict)
    histogram_share: float = 0.1

    @classmethod
    def parse(cls, dp: Any) -> DPSettings | None:
        """None for `dp=None`; else the settings, or a ConfigError saying what is wrong."""
        if dp is None:
            return None
        if not isinstance(dp, dict):
            raise ConfigError(f"dp must be a dict like {{'epsilon': 3, 'delta': 1e-5}}, got {dp!r}")
        unknown = sorted(set(dp) - set(KEYS))
        if unknown or "epsilon" not in dp:
            raise ConfigError(
                f"dp: unknown keys {unknown} or no 'epsilon'; keys are {list(KEYS)} (epsilon "
                "required)"
            )
        out = cls(
            epsilon=_number(dp, "epsilon"),
            delta=_number(dp, "delta", 1e-5),
            max_grad_norm=_number(dp, "max_grad_norm", 1.0),
            public=list(dp.get("public", [])),
            bounds={str(k): list(v) for k, v in dict(dp.get("bounds", {})).items()},
            categories={str(k): list(v) for k, v in dict(dp.get("categories", {})).items()},
            histogram_share=_number(dp, "histogram_share", 0.1),
        )
        out._check()
        return out

    def _check(self) -> None:
        if not 0 < self.epsilon < 1e3:
            raise ConfigError(f"dp: epsilon must be in (0, 1000), got {self.epsilon}")
        if not 0 < self.delta < 1:
            raise ConfigError(f"dp: delta must be in (0, 1), e.g. 1e-5, got {self.delta}")
        if not 0 < self.max_grad_norm < math.inf:
            raise ConfigError(f"dp: max_grad_norm must be > 0, got {self.max_grad_norm}")
        if not 0 < self.histogram_share < 1:
            raise ConfigError(f"dp: histogram_share must be in (0, 1), got {self.histogram_share}")
        bad = sorted(set(self.public) - set(PUBLIC_ITEMS))
        if bad:
            raise ConfigError(f"dp: public items {bad} unknown; choose from {list(PUBLIC_ITEMS)}")
        for name, pair in self.bounds.items():
            ok = len(pair) == 2 and all(_finite(v) for v in pair) and pair[0] < pair[1]
            if not ok:
                raise ConfigError(f"dp: bounds[{name!r}] must be [low, high] with low < high")
        for name, values in self.categories.items():
            if not values or len({str(v) for v in values}) != len(values):
                raise ConfigError(
                    f"dp: categories[{name!r}] must be a non-empty list of distinct values"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _number(dp: dict, key: str, default: float | None = None) -> float:
    value = dp.get(key, default)
    if not _finite(value):
        raise ConfigError(f"dp: {key} must be a finite number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------- public metadata
def private_schema(
    df: pd.DataFrame, schema: TableSchema, settings: DPSettings
) -> tuple[pd.DataFrame, TableSchema, dict[str, Any]]:
    """The table and schema with every data-derived range and category set replaced by the
    declared one (or kept where declared public), and the record of which is which.

    A ConfigError names the columns with neither; a DataError counts training values outside a
    declared category set (ranges clip instead)."""
    df = df.copy()
    missing: list[str] = []
    columns: list[ColumnInfo] = []
    record: dict[str, Any] = {"declared": [], "public": sorted(set(settings.public))}
    for col in schema.columns:
        if col.kind == "categorical":
            declared = settings.categories.get(col.name)
            if declared is None:
                if "categories" not in settings.public:
                    missing.append(col.name)
                columns.append(col)
                continue
            known = {str(v) for v in declared}
            outside = int((~df[col.name].astype(str).isin(known)).sum())
            if outside:
                raise DataError(
                    f"dp: {outside} training value(s) of column {col.name!r} are not among the "
                    f"declared categories {declared[:20]}; add them or drop those rows"
                )
            lookup = {str(v): v for v in declared}
            df[col.name] = df[col.name].map(lambda v, lk=lookup: lk[str(v)])
            columns.append(ColumnInfo(col.name, col.kind, col.dtype, categories=list(declared)))
            record["declared"].append(col.name)
            continue
        bounds = settings.bounds.get(col.name)
        if bounds is None:
            if "ranges" not in settings.public:
                missing.append(col.name)
            columns.append(col)
            continue
        low, high = float(bounds[0]), float(bounds[1])
        df[col.name] = df[col.name].astype(np.float64).clip(low, high).astype(df[col.name].dtype)
        columns.append(ColumnInfo(col.name, col.kind, col.dtype, low, high))
        record["declared"].append(col.name)
    if missing:
        raise ConfigError(
            f"dp: columns {missing} have no declared range or categories; learning them from the "
            "data is not private. Give dp={'bounds': {col: [low, high]}, 'categories': {col: "
            "[...]}} or declare them public with dp={'public': ['ranges', 'categories']}"
        )
    unknown = sorted((set(settings.bounds) | set(settings.categories)) - set(schema.names))
    if unknown:
        raise ConfigError(f"dp: bounds/categories name unknown columns {unknown}")
    out = TableSchema(columns, schema.frame, schema.identifiers, schema.surrogate_prefix)
    return df, out, record


def range_modes(schema: TableSchema) -> dict[str, dict[str, list[float]]]:
    """One mode per number column spanning its (declared) range: alpha = (x - mid) / half-range,
    so no Gaussian mixture is fitted on the data."""
    return {
        c.name: {"means": [(c.min + c.max) / 2], "stds": [max((c.max - c.min) / 8, 1e-12)]}  # type: ignore[operator]
        for c in schema.columns
        if c.kind != "categorical"
    }


# -------------------------------------------------------------------------- accounting
def epsilon_spent(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    histogram_multiplier: float | None = None,
    earlier: list[tuple[float, float, int]] | None = None,
) -> float:
    """ε of `steps` DP-SGD steps (and one Gaussian histogram release) by Opacus's RDP
    accountant; `earlier` (noise multiplier, sample rate, steps) phases compose with them (a
    resumed run whose noise was calibrated for other total steps)."""
    accountants = require("opacus.accountants", "privacy")
    acc = accountants.RDPAccountant()
    acc.history = [*(earlier or []), (noise_multiplier, sample_rate, steps)]
    if histogram_multiplier is not None:
        acc.history.append((histogram_multiplier, 1.0, 1))
    return float(acc.get_epsilon(delta))


def calibrate(
    settings: DPSettings, sample_rate: float, steps: int, histogram: bool
) -> tuple[float, float | None, float]:
    """(DP-SGD noise multiplier, histogram noise multiplier or None, ε spent).

    The DP-SGD multiplier is Opacus's `get_noise_multiplier` for (1 - histogram_share) ε; the
    histogram's is the smallest (bisection) that keeps the composed ε within the target."""
    with warnings.catch_warnings():  # Opacus: "Optimal order is the largest alpha" on probes
        warnings.filterwarnings("ignore", "Optimal order is the largest alpha", UserWarning)
        return _calibrate(settings, sample_rate, steps, histogram)


def _calibrate(
    settings: DPSettings, sample_rate: float, steps: int, histogram: bool
) -> tuple[float, float | None, float]:
    utils = require("opacus.accountants.utils", "privacy")
    share = settings.histogram_share if histogram else 0.0
    sigma = float(
        utils.get_noise_multiplier(
            target_epsilon=settings.epsilon * (1 - share),
            target_delta=settings.delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant="rdp",
        )
    )
    if not histogram:
        return sigma, None, epsilon_spent(sigma, sample_rate, steps, settings.delta)
    # the histogram is one step at sample rate 1, whose RDP is alpha / (2 m^2): bisect on m
    # with the DP-SGD part computed once, then report what the accountant says
    rdp = require("opacus.accountants.analysis.rdp", "privacy")
    orders = require("opacus.accountants", "privacy").RDPAccountant.DEFAULT_ALPHAS
    base = np.asarray(
        rdp.compute_rdp(q=sample_rate, noise_multiplier=sigma, steps=steps, orders=orders)
    )
    alphas = np.asarray(orders, dtype=np.float64)
    low, high = 0.1, 1e4
    for _ in range(60):
        mid = math.sqrt(low * high)
        spent, _ = rdp.get_privacy_spent(
            orders=orders, rdp=base + alphas / (2 * mid**2), delta=settings.delta
        )
        low, high = (low, mid) if spent <= settings.epsilon else (mid, high)
    return sigma, high, epsilon_spent(sigma, sample_rate, steps, settings.delta, high)


def noisy_sampler(
    encoded: np.ndarray,
    discrete_spans: list[tuple[int, int, str]],
    histogram_multiplier: float | None,
    generator: torch.Generator,
) -> CondSampler:
    """A sampling-only `CondSampler` whose category frequencies are the Gaussian-noised counts
    (std = multiplier * sqrt(discrete columns)), clipped at 0 (uniform if all are 0)."""
    std = (histogram_multiplier or 0.0) * math.sqrt(max(len(discrete_spans), 1))
    freq, logp = [], []
    for start, width, _ in discrete_spans:
        counts = np.bincount(encoded[:, start : start + width].argmax(1), minlength=width)
        noise = torch.randn(width, generator=generator, dtype=torch.float64).numpy() * std
        noisy = np.clip(counts + noise, 0.0, None)
        p = noisy / noisy.sum() if noisy.sum() > 0 else np.full(width, 1.0 / width)
        freq.append(p.tolist())
        logp.append(
            (np.log1p(noisy) / np.log1p(noisy).sum()).tolist() if noisy.sum() else p.tolist()
        )
    return CondSampler.from_dict(discrete_spans, {"log_p": logp, "freq_p": freq})


# --------------------------------------------------------------------------- front end
def fit_private(
    est: Any, encoded: np.ndarray, seed: int, settings: DPSettings, public: dict[str, Any]
) -> dict[str, Any]:
    """Train `est` (a TabularGAN being fitted) with a DP-SGD critic; set what `_train` sets
    (`sampler_`, `model_`, `generator_`, `steps_done_`, `history_`) and return the privacy
    record for `model.json` (ε spent by the RDP accountant, the noise, what is public)."""
    from gankit.engine.runs import estimator_settings, fit_model

    n = len(encoded)
    if settings.delta >= 1.0 / n:
        raise ConfigError(
            f"dp: delta={settings.delta} is not below 1/rows = {1 / n:.3g}; a delta that large "
            "allows publishing a row outright. Use e.g. delta=1e-5"
        )
    spans = est.encoder_.discrete_spans
    expected = float(min(est._batch(), max(1, n // 4)))
    sample_rate = expected / n
    steps = est.n_steps * est.critic_steps
    sigma, hist_sigma, spent = calibrate(settings, sample_rate, steps, bool(spans))
    generator = torch.Generator().manual_seed(seed)
    est.sampler_ = noisy_sampler(encoded, spans, hist_sigma, generator)
    model = DPCritic(
        est.encoder_.spans,
        est.sampler_,
        sigma=sigma,
        max_grad_norm=settings.max_grad_norm,
        expected_batch=expected,
        g_batch=int(expected),
        z_dim=est.z_dim,
        hidden=est.hidden,
        lr=est.lr,
        critic_steps=est.critic_steps,
    )
    provider = PoissonRows(encoded, spans, sample_rate, seed)
    run = estimator_settings(est.n_steps, seed, device=est.device, verbose=est.verbose, ema=est.ema)
    trainer = fit_model(model, provider, run, est.run_dir)
    est.model_ = model
    est.generator_ = model.sampling_network("g").cpu().eval()
    est.steps_done_ = trainer.step
    est.history_ = []
    opacus = require("opacus", "privacy")
    return {
        "epsilon": spent,
        "delta": settings.delta,
        "target_epsilon": settings.epsilon,
        "accountant": f"opacus {opacus.__version__} RDP",
        "noise_multiplier": sigma,
        "sample_rate": sample_rate,
        "steps": steps,
        "max_grad_norm": settings.max_grad_norm,
        "histogram_noise_multiplier": hist_sigma,
        "critic": CRITIC,
        "public": public["public"],
        "declared": public["declared"],
        "private": _private_items(settings, bool(spans)),
        "settings": settings.to_dict(),
    }


def _private_items(settings: DPSettings, histogram: bool) -> list[str]:
    items = ["critic weights (DP-SGD)", "generator weights (post-processing of the critic)"]
    if histogram:
        items.append("category frequencies (Gaussian noise, in the same accountant)")
    if "modes" not in settings.public:
        items.append("number encodings (one mode per declared range, no data)")
    return items
