"""Hyper-parameter search with Optuna: `gankit tune` for configs, `tune_estimator` for the tables.

A study samples values for config keys from a search space (YAML), trains each trial as a
normal run directory (`OUT/trial-NNNN`), scores it with one of gankit's metrics, and writes the
best config as a recipe (`OUT/best.yaml`) with a summary (`OUT/summary.html`, `history.png`,
`importance.png`, `tune.json`). The study lives in a database: SQLite (`OUT/study.db`) by
default, PostgreSQL (`postgresql://user@host/db`) for workers on several machines. Every worker
beats a heartbeat; a trial whose worker died is marked failed by the next worker that looks and
run again with the same parameters (Optuna's `RetryFailedTrialCallback`).

The search space maps config keys (or estimator parameters) to a distribution:

    train.lr_d: {log_uniform: [1.0e-5, 1.0e-2]}
    train.ema: {uniform: [0.0, 0.999]}
    model.g_width: {int: [32, 256]}            # {log_int: [..]} samples on a log scale
    objective.loss: [hinge, non-saturating]    # categorical (or {choice: [...]})

Optuna is imported only when a study runs (the `hpo` extra).

Modules: `space` (the search space), `metrics` (what a trial is scored by), `storage` (Optuna
storage, studies, samplers, workers), `study` (`tune`), `outputs` (what a study leaves),
`estimators` (`tune_estimator`), `commands` (`gankit tune`).
"""

from gankit.tune.commands import HELP, cmd_tune, register
from gankit.tune.estimators import EstimatorTuning, estimator_parameters, tune_estimator
from gankit.tune.metrics import ESTIMATOR_SCORINGS, METRICS, Metric, check_metric, score_model
from gankit.tune.outputs import TuneResult, write_outputs
from gankit.tune.space import Param, check_space, grid_size, parse_space, trial_config
from gankit.tune.storage import HEARTBEAT, masked, open_storage, open_study, run_worker
from gankit.tune.study import ReportCallback, TuneSettings, tune

__all__ = [
    "ESTIMATOR_SCORINGS",
    "HEARTBEAT",
    "HELP",
    "METRICS",
    "EstimatorTuning",
    "Metric",
    "Param",
    "ReportCallback",
    "TuneResult",
    "TuneSettings",
    "check_metric",
    "check_space",
    "cmd_tune",
    "estimator_parameters",
    "grid_size",
    "masked",
    "open_storage",
    "open_study",
    "parse_space",
    "register",
    "run_worker",
    "score_model",
    "trial_config",
    "tune",
    "tune_estimator",
    "write_outputs",
]
