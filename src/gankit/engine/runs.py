"""`train` and `resume`: a config in, a run directory out, for any registered model family."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gankit.config import Config, apply_overrides, from_dict, save_config
from gankit.engine.callbacks import truncate_history
from gankit.engine.checkpoint import clean_temp_files
from gankit.engine.distributed import init_distributed, shutdown
from gankit.engine.trainer import Run, Trainer
from gankit.errors import CheckpointError, ConfigError


def build_trainer(
    cfg: Config, run_dir: str | os.PathLike | None, *, callbacks: Sequence[Any] = ()
) -> Trainer:
    """The model and batch provider the config names (by registry), on a Trainer (with extra
    `callbacks`, e.g. the tuner's intermediate evaluations)."""
    import torch

    from gankit.registry import family

    ctx = init_distributed(cfg.train.device, cfg.train.parallel)
    torch.manual_seed(cfg.train.seed)
    model, provider = family(cfg.model.family).build(cfg)
    return Trainer(
        model,
        provider,
        cfg.train,
        run_dir,
        ctx=ctx,
        callbacks=callbacks,
        config_writer=lambda d: save_config(cfg, Path(d) / "config.yaml"),
    )


def _fit(trainer: Trainer) -> Run:
    try:
        return trainer.fit()
    finally:
        shutdown(trainer.ctx)


def train(
    cfg: Config, out: str | os.PathLike | None = None, *, callbacks: Sequence[Any] = ()
) -> Run:
    """Train a model as configured; the run directory is `out` or `cfg.out`."""
    run_dir = Path(out or cfg.out)
    if (run_dir / "state.pt").exists():
        raise ConfigError(
            f"{run_dir} already holds a run; resume it with `gankit train --resume "
            f"{run_dir}` or choose another --out"
        )
    return _fit(build_trainer(cfg, run_dir, callbacks=callbacks))


def resume(run_dir: str | os.PathLike, overrides: list[str] | None = None) -> Run:
    """Continue a stopped run (optionally with overrides, e.g. a larger train.steps)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: missing; {run_dir} is not a gankit run directory")
    try:
        values = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{config_path}: not valid YAML ({exc})") from exc
    cfg = from_dict(apply_overrides(values, list(overrides or [])))
    clean_temp_files(run_dir)
    trainer = build_trainer(cfg, run_dir)
    trainer.load_checkpoint(run_dir)
    if trainer.ctx.is_main:
        truncate_history(run_dir / "metrics.jsonl", trainer.step)
    return _fit(trainer)


def fit_model(
    model,
    provider,
    settings,
    run_dir: str | os.PathLike | None = None,
    *,
    callbacks: list | None = None,
    resume_run: bool = False,
) -> Trainer:
    """Train a model built by a front end (the table estimators) on the engine.

    With `run_dir`, checkpoints are written there; with `resume_run`, training continues from
    the state.pt in `run_dir` (the model and provider must be built exactly as before).
    """
    trainer = Trainer(model, provider, settings, run_dir, callbacks=callbacks or [])
    if resume_run:
        if run_dir is None:
            raise ConfigError("resume needs the run directory the first fit wrote (run_dir=...)")
        trainer.load_checkpoint(run_dir)
        truncate_history(Path(run_dir) / "metrics.jsonl", trainer.step)
    elif run_dir is not None and (Path(run_dir) / "state.pt").exists():
        raise ConfigError(
            f"{run_dir} already holds a fit; continue it with resume=True or choose another run_dir"
        )
    _fit(trainer)
    return trainer


def estimator_settings(
    steps: int,
    seed: int,
    *,
    device: str = "cpu",
    verbose: bool = False,
    checkpoint_every: int = 500,
    log_every: int = 50,
    ema: float = 0.0,
):
    """The engine settings of an estimator's fit (no sample grids; the watchdog as usual)."""
    from gankit.config import TrainConfig

    return TrainConfig(
        steps=steps,
        seed=seed,
        device=device,
        progress=verbose,
        checkpoint_every=checkpoint_every,
        sample_every=max(steps, 1),
        log_every=log_every,
        ema=ema,
    )
