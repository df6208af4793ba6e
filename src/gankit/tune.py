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
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import difflib
import html
import inspect
import io
import json
import math
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import ConfigError, DataError, DependencyError, GankitError, TrainingError

SAMPLERS = ("grid", "random", "tpe")
KINDS = ("uniform", "log_uniform", "int", "log_int", "choice")
SCORE_SEED = 2333  # the fixed noise of the mixture benchmarks (PacGAN's MetricLogger)
TOY_SAMPLES = 2500  # samples scored on ring / grid, as in `gankit bench ring|grid`
GRID_POINTS = 3  # points per continuous range under the grid sampler (unless `grid:` is given)
HEARTBEAT = 10  # seconds between a running trial's heartbeats
MAX_RETRY = 3  # times a trial whose worker died is run again


# --- metrics ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A figure a trial is scored by: its best direction, the data it applies to, its protocol."""

    direction: str
    data: tuple[str, ...]
    protocol: str


TOY = ("ring", "grid")
METRICS: dict[str, Metric] = {
    "modes": Metric("maximize", TOY, "modes with >= 1 HQ sample among 2,500 (seed 2333)"),
    "hq_percent": Metric("maximize", TOY, "% of 2,500 samples within 3σ of their nearest mean"),
    "reverse_kl": Metric("minimize", TOY, "KL(HQ histogram ‖ uniform), nats, 2,500 samples"),
    "modes_hq": Metric("maximize", TOY, "modes + %HQ/100: modes first, %HQ breaks ties"),
    "digits_fd": Metric(
        "minimize", ("digits",), "digits-FD of 360 samples against the train split"
    ),
    "precision": Metric("maximize", ("digits",), "precision (k=3), 360 samples, digits features"),
    "recall": Metric("maximize", ("digits",), "recall (k=3), 360 samples, digits features"),
    "stacked_modes": Metric(
        "maximize", ("stacked-digits",), "distinct digit triples of 2,500 samples (of 1,000)"
    ),
}
ESTIMATOR_SCORINGS = {
    "rmse": Metric("minimize", ("transform",), "RMSE on hidden observed entries, min-max scaled"),
    "fidelity": Metric("maximize", ("sample",), "column shapes and pair correlations vs the table"),
    "utility": Metric("maximize", ("sample",), "TSTR accuracy (mean of LR and RF) on a 30% split"),
}


def check_metric(name: str, data_name: str) -> Metric:
    """The metric called `name`, which must apply to `data_name`; else a ConfigError that lists
    the valid names."""
    if name not in METRICS:
        valid = [m for m, spec in METRICS.items() if data_name in spec.data] or list(METRICS)
        raise ConfigError(
            f"unknown metric {name!r}{_did_you_mean(name, METRICS)}; for data.name = "
            f"{data_name!r} choose one of {', '.join(valid)}"
        )
    metric = METRICS[name]
    if data_name not in metric.data:
        valid = [m for m, spec in METRICS.items() if data_name in spec.data]
        choices = f"choose one of {', '.join(valid)}" if valid else "no tuning metric applies yet"
        raise ConfigError(
            f"metric {name!r} scores {'/'.join(metric.data)} runs, but this config trains on "
            f"data.name = {data_name!r}; {choices}"
        )
    return metric


def score_model(model: Any, cfg: Any) -> dict[str, float]:
    """Every tuning metric that applies to the config's data, for the model as it is now (its
    EMA generator when it keeps one; samples from fixed noise, seed 2333)."""
    import torch

    from gankit.config import to_dict

    name = cfg.data.name
    if name in TOY:
        from gankit.metrics import mixture_modes
        from gankit.metrics.evaluate import toy_mixture

        means, std = toy_mixture(to_dict(cfg)["data"])
        fake = torch.nan_to_num(model.sample(TOY_SAMPLES, seed=SCORE_SEED).float(), nan=1e6)
        r = mixture_modes(fake, means, std)
        scores = {k: float(r[k]) for k in ("modes", "hq_percent", "reverse_kl")}
        scores["modes_hq"] = scores["modes"] + scores["hq_percent"] / 100.0
        return scores
    if name == "digits":
        from gankit.metrics import frechet_distance, precision_recall

        ext, real = _digits_reference()
        fake = torch.nan_to_num(model.sample(360, seed=SCORE_SEED).float())
        ff = ext.features(fake)
        scores = {"digits_fd": frechet_distance(real=real, fake=ff)}
        scores.update(precision_recall(real=real, fake=ff, k=3))
        return {k: float(v) for k, v in scores.items()}
    if name == "stacked-digits":
        from gankit.metrics import classify_stacked, stacked_modes
        from gankit.metrics.features import digits_extractor

        fake = torch.nan_to_num(model.sample(TOY_SAMPLES, seed=SCORE_SEED).float())
        labels = classify_stacked(fake, digits_extractor().model)
        return {"stacked_modes": float(stacked_modes(labels)["modes"])}
    return {}


_DIGITS_CACHE: list = []


def _digits_reference():
    """The digits extractor and its features of the train split (computed once per process)."""
    if not _DIGITS_CACHE:
        from gankit.data import load_digits
        from gankit.metrics.features import digits_extractor

        ext = digits_extractor()
        real, _ = load_digits("train")
        _DIGITS_CACHE.append((ext, ext.features(real)))
    return _DIGITS_CACHE[0]


def _finite(value: float, direction: str) -> float:
    """A non-finite score (a diverged generator) becomes the worst finite value."""
    if math.isfinite(value):
        return value
    return 1e12 if direction == "minimize" else -1e12


# --- the search space ------------------------------------------------------------------------
@dataclass
class Param:
    """One searched key: a range (`uniform`, `log_uniform`, `int`, `log_int`) or `choice`s."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: list[Any] = field(default_factory=list)
    grid: list[Any] | None = None

    def _encoded(self) -> list[Any]:
        """Optuna's categorical values are scalars: lists and mappings travel as JSON text."""
        if all(c is None or isinstance(c, bool | int | float | str) for c in self.choices):
            return list(self.choices)
        return [json.dumps(c) for c in self.choices]

    def decode(self, value: Any) -> Any:
        if self.kind == "choice" and self._encoded() != list(self.choices):
            return self.choices[self._encoded().index(value)]
        return value

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return self.decode(trial.suggest_categorical(self.key, self._encoded()))
        if self.kind in ("int", "log_int"):
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), log=self.kind == "log_int"
            )
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log_uniform")

    def extremes(self) -> list[Any]:
        """The values that must all be valid: both ends, or every choice."""
        if self.kind == "choice":
            return list(self.choices)
        cast = int if self.kind in ("int", "log_int") else float
        return [cast(self.low), cast(self.high)]

    def grid_values(self) -> list[Any]:
        """The points the grid sampler visits (encoded as Optuna stores them)."""
        if self.kind == "choice":
            return self._encoded()
        if self.grid is not None:
            return list(self.grid)
        if self.kind in ("int", "log_int") and self.high - self.low < 16:
            return list(range(int(self.low), int(self.high) + 1))
        log = self.kind.startswith("log")
        lo, hi = (math.log(self.low), math.log(self.high)) if log else (self.low, self.high)
        points = [lo + (hi - lo) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
        points = [math.exp(p) for p in points] if log else points
        if self.kind in ("int", "log_int"):
            return sorted({round(p) for p in points})
        return points


def parse_space(space: dict[str, Any] | str | os.PathLike, where: str = "space") -> list[Param]:
    """The search space from a mapping or a YAML file, checked for form (not for keys)."""
    if not isinstance(space, dict):
        path = Path(space)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such search-space file")
        try:
            space = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(space, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to distributions")
    if not space:
        raise ConfigError(f"{where}: the search space is empty")
    return [_param(where, str(key), spec) for key, spec in space.items()]


def _param(where: str, key: str, spec: Any) -> Param:
    at = f"{where}: {key}"
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{at}: expected a list of choices or one of {{{', '.join(KINDS)}: ...}}, got {spec!r}"
        )
    grid = spec.get("grid")
    kinds = [k for k in spec if k != "grid"]
    if len(kinds) != 1 or kinds[0] not in KINDS:
        raise ConfigError(
            f"{at}: expected exactly one of {', '.join(KINDS)} (plus an optional grid), got "
            f"{sorted(spec)}{_did_you_mean(str(kinds[0]) if kinds else '', KINDS)}"
        )
    kind, value = kinds[0], spec[kinds[0]]
    if grid is not None and not (isinstance(grid, list) and grid):
        raise ConfigError(f"{at}: grid must be a non-empty list of values, got {grid!r}")
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{at}: choices must be a non-empty list, got {value!r}")
        return Param(key, kind, choices=value, grid=grid)
    value = [_number(v) for v in value] if isinstance(value, list) else value
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{at}: {kind} needs [low, high] (two numbers), got {value!r}")
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{at}: {kind} needs finite low < high, got [{low}, {high}]")
    if kind in ("int", "log_int") and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{at}: {kind} bounds must be whole numbers, got [{low}, {high}]")
    if kind.startswith("log") and low <= 0:
        raise ConfigError(f"{at}: {kind} needs low > 0, got {low}")
    return Param(key, kind, float(low), float(high), grid=grid)


def _number(value: Any) -> Any:
    """PyYAML reads `1e-5` (no dot) as text: accept it as a number."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def _did_you_mean(name: str, valid: Any) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


def trial_config(
    config: str | os.PathLike, overrides: Sequence[str], params: dict[str, Any], **fixed: Any
):
    """The config of one trial: the recipe, the user's overrides, the trial's values, `fixed`."""
    from gankit.config import load_config

    items = [*overrides, *(_override(k, v) for k, v in params.items())]
    items += [_override(k, v) for k, v in fixed.items()]
    return load_config(config, items)


def check_space(
    config: str | os.PathLike, space: list[Param], overrides: Sequence[str] = (), where: str = ""
) -> None:
    """Every key must be a config key and every end of its range a valid value: each is checked
    by building the config with it (gankit.config's own validation)."""
    for param in space:
        for value in param.extremes():
            try:
                trial_config(config, overrides, {param.key: value})
            except ConfigError as exc:
                raise ConfigError(f"{where or 'space'}: {param.key}: {exc}") from exc


# --- Optuna ----------------------------------------------------------------------------------
def _optuna():
    try:
        import optuna
    except ModuleNotFoundError as exc:
        raise DependencyError(
            "tuning needs Optuna: pip install 'gankit[hpo]' (or pip install optuna)"
        ) from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and their retry callback are marked experimental; they are what we rely on
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def masked(url: str | None) -> str | None:
    """A storage URL without its password (for messages and tune.json)."""
    if url is None or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url


def open_storage(url: str | None, heartbeat: int = HEARTBEAT):
    """Optuna's RDB storage for `url` (SQLite or PostgreSQL) with heartbeats and retries of
    trials whose worker died; None (in memory) without a URL."""
    optuna = _optuna()
    if url is None:
        return None
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # workers wait for the write lock
    elif url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]  # psycopg 3, the hpo extra
        engine_kwargs["pool_pre_ping"] = True
    if "psycopg" in url:
        try:
            import psycopg  # noqa: F401
        except ModuleNotFoundError as exc:
            raise DependencyError(
                "a PostgreSQL study needs the psycopg driver: pip install 'gankit[hpo]' "
                "(or pip install 'psycopg[binary]')"
            ) from exc
    from optuna import storages
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    # Optuna >= 4.9 names the retry "heartbeat stale"; older releases "failed trial"
    if "heartbeat_stale_trial_callback" in inspect.signature(storages.RDBStorage).parameters:
        retry = {
            "heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            )
        }
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)}
    last: Exception | None = None
    for attempt in range(6):  # workers starting together race to create the tables
        try:
            return storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                **retry,
            )
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            last = exc
            if isinstance(exc, OperationalError) or attempt == 5:
                break  # no server, refused login, missing database: say so at once
            time.sleep(0.2 * (attempt + 1))
    first = str(last).strip().splitlines()[0] if str(last).strip() else type(last).__name__
    raise ConfigError(f"cannot open the study storage {masked(url)}: {first}") from last


def open_study(storage: Any, name: str, direction: str, sampler: Any, pruner: Any):
    """Create the study, or join it when another worker already did (same direction)."""
    optuna = _optuna()
    for attempt in range(6):
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=name,
                direction=direction,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
            break
        except Exception as exc:  # another worker created it between the check and the insert
            if attempt == 5:
                raise ConfigError(f"cannot create or load the study {name!r}: {exc}") from exc
            time.sleep(0.2 * (attempt + 1))
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {name!r} already exists with direction {study.direction.name.lower()}; "
            f"this run asked to {direction} (use another --study)"
        )
    return study


def make_sampler(name: str, space: list[Param], n_trials: int, seed: int | None):
    optuna = _optuna()
    if name == "grid":
        return optuna.samplers.GridSampler({p.key: p.grid_values() for p in space}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        startup = min(10, max(1, n_trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)
    raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def grid_size(space: list[Param]) -> int:
    return math.prod(len(p.grid_values()) for p in space)


def _retried(trials: list) -> set[int]:
    """Numbers of trials whose worker died and that were queued again (they do not count)."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", []))
    return out


def run_worker(
    study: Any, storage: Any, objective: Callable, n_trials: int, poll: float = 0.5
) -> None:
    """Run trials until the study holds `n_trials` of them (every worker of the study counts)
    and none is still running: a trial whose worker died is failed once its heartbeat is
    stale, re-queued with the same parameters, and run here."""
    _optuna()
    from optuna.storages import RDBStorage, fail_stale_trials
    from optuna.trial import TrialState

    heartbeat = isinstance(storage, RDBStorage)  # in memory: one process, nothing goes stale
    while True:
        if heartbeat:
            fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        retried = _retried(trials)
        counted = [t for t in trials if t.number not in retried]
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if waiting or len(counted) < n_trials:
            study.optimize(objective, n_trials=1, catch=(TrainingError,), gc_after_trial=False)
            continue
        if any(t.state == TrialState.RUNNING for t in counted) and heartbeat:
            time.sleep(poll)  # another worker's trial: wait for it, or for its heartbeat to stop
            continue
        return


# --- `gankit tune` ----------------------------------------------------------------------------
class ReportCallback:
    """Scores the model every `every` steps, reports it to the trial and prunes the run
    (raises optuna.TrialPruned, which ends `fit`) when the pruner says so."""

    def __init__(self, trial: Any, cfg: Any, metric: str, every: int) -> None:
        self.trial, self.cfg, self.metric, self.every = trial, cfg, metric, every
        self.direction = METRICS[metric].direction

    def on_start(self, trainer: Any) -> None:
        pass

    def on_step(self, trainer: Any, stats: dict[str, float]) -> None:
        if trainer.step % self.every or trainer.step >= trainer.total_steps:
            return
        value = _finite(score_model(trainer.model, self.cfg)[self.metric], self.direction)
        self.trial.report(value, trainer.step)
        if self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(f"pruned at step {trainer.step}: {self.metric} = {value:.4g}")

    def on_end(self, trainer: Any) -> None:
        pass


@dataclass
class TuneSettings:
    """What one worker needs to run trials (picklable: it travels to worker processes)."""

    config: str
    space_file: str | None
    space: dict[str, Any]
    n_trials: int
    sampler: str
    metric: str
    direction: str
    storage: str | None
    study: str
    out: str
    overrides: list[str]
    prune_every: int
    seed: int
    heartbeat: int
    worker: int = 0


def _objective(s: TuneSettings, space: list[Param]) -> Callable:
    from gankit.engine.distributed import shutdown
    from gankit.engine.runs import build_trainer

    def objective(trial: Any) -> float:
        params = {p.key: p.suggest(trial) for p in space}
        run_dir = Path(s.out) / f"trial-{trial.number:04d}"
        if (run_dir / "state.pt").exists():
            raise ConfigError(
                f"{run_dir} already holds a run of another study (trial numbers start again "
                "in a new storage); choose another --out or the storage of that study"
            )
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        cfg = trial_config(s.config, s.overrides, params, out=str(run_dir))
        cfg.train.progress = False
        callbacks = [ReportCallback(trial, cfg, s.metric, s.prune_every)] if s.prune_every else []
        trainer = build_trainer(cfg, run_dir, callbacks=callbacks)
        start = time.perf_counter()
        try:
            trainer.fit()
        except TrainingError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        finally:
            shutdown(trainer.ctx)
        trial.set_user_attr("train_seconds", round(time.perf_counter() - start, 3))
        scores = score_model(trainer.model, cfg)
        for key, value in scores.items():
            trial.set_user_attr(key, value)
        return _finite(scores[s.metric], s.direction)

    return objective


def _settings_study(s: TuneSettings, space: list[Param]):
    optuna = _optuna()
    storage = open_storage(s.storage, s.heartbeat)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, s.n_trials // 4)))
        if s.prune_every
        else optuna.pruners.NopPruner()
    )
    seed = None if s.seed is None else s.seed + s.worker
    sampler = make_sampler(s.sampler, space, s.n_trials, seed)
    return open_study(storage, s.study, s.direction, sampler, pruner), storage


def _work(s: TuneSettings) -> None:
    """One worker: join the study and run trials until it is complete."""
    import torch

    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    space = parse_space(s.space, s.space_file or "space")
    study, storage = _settings_study(s, space)
    run_worker(study, storage, _objective(s, space), s.n_trials)


@dataclass
class TuneResult:
    """What `tune` leaves: the study, the best trial's value, parameters and recipe."""

    study: Any
    best_value: float
    best_params: dict[str, Any]
    best_config: Path
    summary: Path
    out: Path
    seconds: float


def tune(
    config: str | os.PathLike,
    space: dict[str, Any] | str | os.PathLike,
    *,
    n_trials: int,
    metric: str,
    sampler: str = "tpe",
    direction: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    out: str | os.PathLike = "runs/tune",
    overrides: Sequence[str] = (),
    prune_every: int | None = None,
    seed: int = 0,
    heartbeat: int = HEARTBEAT,
    command: str | None = None,
) -> TuneResult:
    """Search `space` over the config's keys for the best `metric`: `n_trials` trials in all
    (over every worker of the study), each a run directory `OUT/trial-NNNN`; writes
    `OUT/best.yaml`, `OUT/summary.html`, `OUT/tune.json`. See the module docstring and
    docs/tuning.md. `prune_every` (default: a fifth of the steps; 0 = off) is how often a
    trial's metric is reported to Optuna's MedianPruner."""
    from gankit.config import load_config

    config = str(config)
    base = load_config(config, list(overrides))
    chosen = check_metric(metric, base.data.name)
    direction = direction or chosen.direction
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"direction must be minimize or maximize, got {direction!r}")
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if n_trials < 1 or workers < 1:
        raise ConfigError(f"--trials and --workers must be >= 1, got {n_trials} and {workers}")
    space_file = None if isinstance(space, dict) else str(space)
    params = parse_space(space, space_file or "space")
    check_space(config, params, overrides, space_file or "space")
    _optuna()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if sampler == "grid" and grid_size(params) < n_trials:
        n_trials = grid_size(params)  # the grid sampler visits each point once
    if prune_every is None:
        prune_every = max(1, base.train.steps // 5)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    settings = TuneSettings(
        config=config,
        space_file=space_file,
        space={p.key: _spec(p) for p in params},
        n_trials=n_trials,
        sampler=sampler,
        metric=metric,
        direction=direction,
        storage=storage,
        study=study_name or Path(config).stem,
        out=str(out),
        overrides=list(overrides),
        prune_every=int(prune_every),
        seed=seed,
        heartbeat=heartbeat,
    )
    start = time.perf_counter()
    _settings_study(settings, params)  # create it once, before the workers join
    children = [_spawn(settings, k, workers) for k in range(1, workers)]
    try:
        with _threads(workers):
            _work(settings)
        for child in children:
            if child.wait() != 0:
                raise TrainingError(
                    f"a tuning worker (pid {child.pid}) exited with code {child.returncode}; "
                    f"the study is intact in {masked(storage)}: rerun to finish it"
                )
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
    seconds = time.perf_counter() - start
    study, _ = _settings_study(settings, params)
    return write_outputs(study, settings, params, seconds, command)


def _spec(p: Param) -> dict[str, Any]:
    spec: dict[str, Any] = {p.kind: p.choices if p.kind == "choice" else [p.low, p.high]}
    if p.grid is not None:
        spec["grid"] = p.grid
    return spec


@contextlib.contextmanager
def _threads(workers: int):
    """K workers on this machine share its cores: each uses cores/K threads (unless
    OMP_NUM_THREADS says otherwise)."""
    import torch

    before = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ and workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _spawn(s: TuneSettings, index: int, workers: int) -> subprocess.Popen:
    payload = json.dumps({**s.__dict__, "worker": index})
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    return subprocess.Popen([sys.executable, "-m", "gankit.tune", "--worker", payload], env=env)


# --- outputs ---------------------------------------------------------------------------------
def write_outputs(
    study: Any, s: TuneSettings, space: list[Param], seconds: float, command: str | None
) -> TuneResult:
    """best.yaml, tune.json, history.png, importance.png and summary.html in OUT."""
    from optuna.trial import TrialState

    from gankit.config import to_dict
    from gankit.modeldir import atomic_write_bytes, atomic_write_json

    out = Path(s.out)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        counts = {st.name.lower(): sum(t.state == st for t in trials) for st in TrialState}
        errors = [t.user_attrs["error"] for t in trials if "error" in t.user_attrs]
        hint = f"; first error: {errors[0]}" if errors else ""
        raise TrainingError(
            f"no trial of study {s.study!r} completed ({counts}){hint}; "
            "widen the space, lengthen train.steps or prune less (--prune-every 0)"
        )
    best = study.best_trial
    by_key = {p.key: p for p in space}
    best_params = {k: by_key[k].decode(v) if k in by_key else v for k, v in best.params.items()}
    best_out = f"runs/{s.study}-best"
    cfg = trial_config(s.config, s.overrides, best_params, out=best_out)
    header = (
        f"# Best config of study {s.study!r} ({s.sampler}, {len(trials)} trials): trial "
        f"{best.number}, {s.metric} = {best.value:.6g} ({s.direction}).\n"
        f"# From {s.config}"
        + "".join(f" --set {o}" for o in s.overrides)
        + f" with {json.dumps(best_params)}.\n# Train it: gankit train {out / 'best.yaml'}\n"
    )
    body = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    atomic_write_bytes(out / "best.yaml", (header + body).encode())
    rows = [_trial_row(t, by_key) for t in trials]
    pictures = _plots(study, trials, s, out)
    atomic_write_json(
        out / "tune.json",
        {
            "study": s.study,
            "storage": masked(s.storage),
            "config": s.config,
            "overrides": s.overrides,
            "space": s.space,
            "sampler": s.sampler,
            "metric": s.metric,
            "metric_protocol": METRICS[s.metric].protocol,
            "direction": s.direction,
            "n_trials": s.n_trials,
            "prune_every": s.prune_every,
            "best": {"trial": best.number, "value": best.value, "params": best_params},
            "importance": pictures.get("importance_values", {}),
            "trials": rows,
            "seconds": round(seconds, 3),
            "command": command,
            "environment": _environment(),
        },
    )
    summary = out / "summary.html"
    atomic_write_bytes(summary, _html(s, rows, best, best_params, pictures).encode())
    return TuneResult(study, best.value, best_params, out / "best.yaml", summary, out, seconds)


def _trial_row(t: Any, by_key: dict[str, Param]) -> dict[str, Any]:
    params = {k: by_key[k].decode(v) if k in by_key else v for k, v in t.params.items()}
    extra = {k: v for k, v in t.user_attrs.items() if k not in ("run_dir", "worker")}
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": t.value,
        "params": params,
        "run_dir": t.user_attrs.get("run_dir"),
        "worker": t.user_attrs.get("worker"),
        "retry_of": t.system_attrs.get("failed_trial"),
        "last_step": max(t.intermediate_values) if t.intermediate_values else None,
        **extra,
    }


def _plots(study: Any, trials: list, s: TuneSettings, out: Path) -> dict[str, Any]:
    """history.png (every trial's value and the best so far) and importance.png (fANOVA
    importance of each parameter; needs two or more complete trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    pictures: dict[str, Any] = {}
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [t.number for t in done]
    ys = [t.value for t in done]
    ax.scatter(xs, ys, s=14, label="complete trial")
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.scatter([t.number for t in pruned], last, s=14, marker="x", label="pruned (last)")
    best, running = [], None
    for y in ys:
        better = running is None or (y < running if s.direction == "minimize" else y > running)
        running = y if better else running
        best.append(running)
    ax.step(xs, best, where="post", color="C3", label="best so far")
    ax.set(xlabel="trial", ylabel=s.metric, title=f"{s.study}: optimisation history")
    ax.legend(fontsize=8)
    fig.tight_layout()
    pictures["history"] = _save(fig, out / "history.png")
    plt.close(fig)
    importance: dict[str, float] = {}
    if len(done) >= 4 and len({json.dumps(t.params, sort_keys=True) for t in done}) >= 2:
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate studies (a constant parameter)
            import optuna

            importance = dict(optuna.importance.get_param_importances(study))
    pictures["importance_values"] = importance
    if importance:
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(importance)))
        names = list(importance)[::-1]
        ax.barh(names, [importance[n] for n in names])
        ax.set(xlabel="importance (fANOVA, normalised)", title="parameter importance")
        fig.tight_layout()
        pictures["importance"] = _save(fig, out / "importance.png")
        plt.close(fig)
    return pictures


def _save(fig: Any, path: Path) -> str:
    from gankit.modeldir import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())
    return base64.b64encode(buf.getvalue()).decode()


def _html(s: TuneSettings, rows: list, best: Any, best_params: dict, pictures: dict) -> str:
    e = html.escape
    images = "".join(
        f'<img alt="{k}" src="data:image/png;base64,{pictures[k]}">'
        for k in ("history", "importance")
        if k in pictures
    )
    keys = list(s.space)
    head = "".join(f"<th>{e(k)}</th>" for k in ["trial", "state", s.metric, *keys, "run"])
    body = ""
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:.6g}"
        cells = [str(r["number"]), r["state"], value]
        cells += [json.dumps(r["params"].get(k)) for k in keys] + [str(r["run_dir"] or "")]
        body += "<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>\n"
    return (
        "<!doctype html><meta charset=utf-8>"
        f"<title>gankit tune: {e(s.study)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}img{max-width:48%}</style>"
        f"<h1>Study {e(s.study)}</h1><p>{e(s.config)}, {e(s.sampler)} sampler, metric "
        f"<b>{e(s.metric)}</b> ({e(s.direction)}; {e(METRICS[s.metric].protocol)}), "
        f"{len(rows)} trials.</p><p>Best: trial {best.number}, {e(s.metric)} = "
        f"{best.value:.6g}, {e(json.dumps(best_params))} — recipe <code>best.yaml</code>.</p>"
        f"{images}<table><tr>{head}</tr>\n{body}</table>"
    )


def _environment() -> dict[str, Any]:
    import numpy
    import optuna
    import torch

    from gankit import __version__

    return {
        "gankit": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --- the table estimators --------------------------------------------------------------------
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
    optuna = _optuna()
    name = estimator_cls.__name__
    valid = estimator_parameters(estimator_cls)
    space_params = parse_space(space, "space" if isinstance(space, dict) else str(space))
    fixed = dict(params or {})
    for key in [p.key for p in space_params] + list(fixed):
        if key not in valid:
            raise ConfigError(
                f"{name} has no parameter {key!r}{_did_you_mean(key, valid)}; its parameters: "
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


# --- the command -----------------------------------------------------------------------------
HELP = "search hyper-parameters with Optuna, write the best recipe"


def register(subparsers) -> None:
    """Add `gankit tune` to the `gankit` parser."""
    p = subparsers.add_parser(
        "tune",
        help=HELP,
        description="Run an Optuna study over config keys; each trial is a run directory "
        "OUT/trial-NNNN; the best config is written to OUT/best.yaml (see docs/tuning.md).",
    )
    p.add_argument("config", help="YAML recipe to start from")
    p.add_argument("--space", required=True, help="YAML search space over config keys")
    p.add_argument("--trials", type=int, required=True, help="trials in the study (all workers)")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    p.add_argument(
        "--metric", required=True, help=f"what to optimise: {', '.join(METRICS)} (per data)"
    )
    p.add_argument("--direction", choices=("minimize", "maximize"), help="default: the metric's")
    p.add_argument(
        "--storage",
        help="study database URL: sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB "
        "(default: sqlite OUT/study.db)",
    )
    p.add_argument(
        "--study",
        help="study name (default: the config's file name); workers "
        "with the same storage and name share the study",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--out", default="runs/tune", help="directory of trials and results")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every trial (repeatable)",
    )
    p.add_argument(
        "--prune-every",
        type=int,
        help="steps between intermediate evaluations for pruning (default: steps/5; 0: off)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument(
        "--heartbeat",
        type=int,
        default=HEARTBEAT,
        help="seconds between a running trial's heartbeats; a trial silent for twice this is "
        "failed and run again",
    )
    p.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    result = tune(
        args.config,
        args.space,
        n_trials=args.trials,
        metric=args.metric,
        sampler=args.sampler,
        direction=args.direction,
        storage=args.storage,
        study_name=args.study,
        workers=args.workers,
        out=args.out,
        overrides=args.overrides,
        prune_every=args.prune_every,
        seed=args.seed,
        heartbeat=args.heartbeat,
        command=_command_line(args),
    )
    counts: dict[str, int] = {}
    for t in result.study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    print(
        f"{sum(counts.values())} trials ({', '.join(f'{v} {k}' for k, v in counts.items())}) in "
        f"{result.seconds:.1f} s; best {args.metric} = {result.best_value:.6g} with "
        f"{json.dumps(result.best_params)}"
    )
    print(f"best recipe: {result.best_config}  summary: {result.summary}")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    parts = ["gankit", "tune", args.config, "--space", args.space, "--trials", str(args.trials)]
    parts += ["--sampler", args.sampler, "--metric", args.metric]
    for flag in ("direction", "study", "prune_every"):
        if getattr(args, flag) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.storage:
        parts += ["--storage", masked(args.storage) or ""]
    parts += ["--workers", str(args.workers), "--out", args.out, "--seed", str(args.seed)]
    for item in args.overrides:
        parts += ["--set", item]
    return shlex.join(parts)


def _worker_main(argv: list[str]) -> int:
    """`python -m gankit.tune --worker JSON`: one extra worker of `gankit tune --workers K`."""
    if len(argv) != 2 or argv[0] != "--worker":
        print("usage: python -m gankit.tune --worker SETTINGS_JSON", file=sys.stderr)
        return 2
    try:
        _work(TuneSettings(**json.loads(argv[1])))
    except GankitError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
