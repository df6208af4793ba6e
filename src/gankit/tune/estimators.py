"""`tune_estimator`: the same search for the table estimators' constructor parameters."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gankit.errors import (
    ConfigError,
    DataError,
    GankitError,
    TrainingError,
)
from gankit.tune.metrics import ESTIMATOR_SCORINGS
from gankit.tune.space import did_you_mean, grid_size, parse_space
from gankit.tune.storage import (
    HEARTBEAT,
    make_sampler,
    open_storage,
    open_study,
    require_optuna,
    run_worker,
)


@dataclass
class EstimatorTuning:
    """What `tune_estimator` leaves: the study and its best parameters and value."""

    study: Any
    best_params: dict[str, Any]
    best_value: float
    scoring: str


def estimator_parameters(estimator_cls: type) -> list[str]:
    return [
        n
        for n, p in inspect.signature(estimator_cls.__init__).parameters.items()
        if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def tune_estimator(
    estimator_cls: type,
    X: Any,
    space: dict[str, Any] | str | os.PathLike,
    scoring: str | Callable[[Any, Any], float] | None = None,
    n_trials: int = 20,
    *,
    sampler: str = "tpe",
    direction: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    params: dict[str, Any] | None = None,
    fit_params: dict[str, Any] | None = None,
    target: str | None = None,
    hide_rate: float = 0.2,
    seed: int = 0,
    heartbeat: int = HEARTBEAT,
) -> EstimatorTuning:
    """Search `space` over the estimator's constructor parameters (`GANImputer`, `TabularGAN`,
    ...): each trial builds `estimator_cls(**params, **trial values)` and scores it.

    `scoring`: "rmse" (imputers, the default for estimators with `transform`: a seeded
    `hide_rate` of the observed numeric entries of X is hidden, the estimator is fitted on the
    rest and the filled values are compared after min-max scaling), "fidelity" (synthesizers,
    their default: fidelity_score of as many synthetic rows as X against X), "utility"
    (synthesizers: fitted on a stratified 70% of X, TSTR accuracy on the other 30%, mean of
    logistic regression and a random forest; needs `target`), or a callable
    `(estimator, X) -> float` (then give `direction`). `storage` as for `gankit tune` (None:
    in memory)."""
    optuna = require_optuna()
    name = estimator_cls.__name__
    valid = estimator_parameters(estimator_cls)
    space_params = parse_space(space, "space" if isinstance(space, dict) else str(space))
    fixed = dict(params or {})
    for key in [p.key for p in space_params] + list(fixed):
        if key not in valid:
            raise ConfigError(
                f"{name} has no parameter {key!r}{did_you_mean(key, valid)}; its parameters: "
                f"{', '.join(valid)}"
            )
    scorings = [s for s, m in ESTIMATOR_SCORINGS.items() if hasattr(estimator_cls, m.data[0])]
    if scoring is None:
        if not scorings:
            raise ConfigError(f"{name}: give a scoring callable (estimator, X) -> float")
        scoring = scorings[0]
    if callable(scoring):
        if direction is None:
            raise ConfigError("a scoring callable needs direction='minimize' or 'maximize'")
        score_fn, label = scoring, getattr(scoring, "__name__", "custom")
    else:
        if scoring not in scorings:
            raise ConfigError(
                f"unknown scoring {scoring!r} for {name}; choose one of {', '.join(scorings)} "
                "or pass a callable (estimator, X) -> float"
            )
        score_fn, label = _estimator_scorer(scoring, X, fit_params or {}, target, hide_rate, seed)
        direction = direction or ESTIMATOR_SCORINGS[scoring].direction
    for p in space_params:  # both ends of every range must be accepted by the estimator
        for value in p.extremes():
            est = estimator_cls(**{**fixed, p.key: value})
            check = getattr(est, "_check_params", None)
            if check is not None:
                try:
                    check()
                except GankitError as exc:
                    raise ConfigError(f"space: {p.key} = {value!r}: {exc}") from exc
    rdb = open_storage(storage, heartbeat)
    study = open_study(
        rdb,
        study_name or f"{name}-{label}",
        direction,
        make_sampler(sampler, space_params, n_trials, seed),
        optuna.pruners.NopPruner(),
    )
    if sampler == "grid":
        n_trials = min(n_trials, grid_size(space_params))

    def objective(trial: Any) -> float:
        values = {p.key: p.suggest(trial) for p in space_params}
        kwargs = {"random_state": seed} if "random_state" in valid else {}
        est = estimator_cls(**{**kwargs, **fixed, **values})
        value = float(score_fn(est, X))
        if not math.isfinite(value):
            raise TrainingError(f"score is {value}")
        return value

    run_worker(study, rdb, objective, n_trials)
    best = study.best_trial
    by_key = {p.key: p for p in space_params}
    best_params = {k: by_key[k].decode(v) for k, v in best.params.items()}
    return EstimatorTuning(study, best_params, best.value, label)


def _estimator_scorer(
    scoring: str, X: Any, fit_params: dict, target: str | None, hide_rate: float, seed: int
) -> tuple[Callable[[Any, Any], float], str]:
    import numpy as np
    import pandas as pd

    if scoring == "rmse":
        frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        if not numeric:
            raise DataError("rmse scoring needs numeric columns to hide and refill")
        values = frame[numeric].to_numpy(np.float64)
        observed = ~np.isnan(values)
        rng = np.random.default_rng(seed)
        hide = observed & (rng.random(values.shape) < hide_rate)
        keep_one = (observed & ~hide).sum(1) == 0  # every row keeps an observed value
        hide[keep_one] = False
        if not hide.any():
            raise DataError("rmse scoring: no observed entry to hide (X is empty or all NaN)")
        lo, hi = np.nanmin(values, 0), np.nanmax(values, 0)
        scale = np.where(hi > lo, hi - lo, 1.0)
        masked_frame = frame.copy()
        masked_values = values.copy()
        masked_values[hide] = np.nan
        masked_frame[numeric] = masked_values
        given = masked_frame if isinstance(X, pd.DataFrame) else masked_frame.to_numpy()

        def rmse(est: Any, _X: Any) -> float:
            filled = est.fit(given, **fit_params).transform(given)
            out = pd.DataFrame(np.asarray(filled), columns=frame.columns)
            got = out[numeric].to_numpy(np.float64)
            err = ((got - values) / scale)[hide]
            return float(np.sqrt(np.mean(err**2)))

        return rmse, "rmse"
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"{scoring} scoring needs X as a pandas DataFrame")
    if scoring == "fidelity":
        from gankit.tabular.fidelity import fidelity_score

        def fidelity(est: Any, _X: Any) -> float:
            est.fit(X, **fit_params)
            synth = est.sample(len(X), seed=seed)
            return fidelity_score(X[est.schema_.names], synth[est.schema_.names], est.schema_)

        return fidelity, "fidelity"
    if target is None or target not in X.columns:
        raise ConfigError(f"utility scoring needs target= one of X's columns, got {target!r}")
    from sklearn.model_selection import train_test_split

    from gankit.bench.synth import utility

    train, test = train_test_split(X, test_size=0.3, stratify=X[target], random_state=seed)
    params = {**fit_params}
    params.setdefault("discrete_columns", [target])

    def tstr(est: Any, _X: Any) -> float:
        est.fit(train, **params)
        synth = est.sample(len(train), seed=seed)
        rename = {target: "target"}
        u = utility(synth.rename(columns=rename), test.rename(columns=rename), seed)
        return 0.5 * (u["lr_acc"] + u["rf_acc"])

    return tstr, "utility"
