"""`tune`: a study of trials, each a normal run directory, pruned from intermediate scores."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.errors import (
    ConfigError,
    TrainingError,
)
from gankit.tune.metrics import METRICS, check_metric, finite_score, score_model
from gankit.tune.outputs import TuneResult, write_outputs
from gankit.tune.space import (
    SAMPLERS,
    Param,
    check_space,
    grid_size,
    parse_space,
    trial_config,
)
from gankit.tune.storage import (
    HEARTBEAT,
    make_sampler,
    masked,
    open_storage,
    open_study,
    require_optuna,
    run_worker,
)


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
        value = finite_score(score_model(trainer.model, self.cfg)[self.metric], self.direction)
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
        return finite_score(scores[s.metric], s.direction)

    return objective


def _settings_study(s: TuneSettings, space: list[Param]):
    optuna = require_optuna()
    storage = open_storage(s.storage, s.heartbeat)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, s.n_trials // 4)))
        if s.prune_every
        else optuna.pruners.NopPruner()
    )
    seed = None if s.seed is None else s.seed + s.worker
    sampler = make_sampler(s.sampler, space, s.n_trials, seed)
    return open_study(storage, s.study, s.direction, sampler, pruner), storage


def work(s: TuneSettings) -> None:
    """One worker: join the study and run trials until it is complete."""
    import torch

    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    space = parse_space(s.space, s.space_file or "space")
    study, storage = _settings_study(s, space)
    run_worker(study, storage, _objective(s, space), s.n_trials)


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
    require_optuna()
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
            work(settings)
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
