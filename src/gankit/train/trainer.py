"""The training loop: Algorithm 1 of Goodfellow et al. 2014, and nothing else.

k discriminator steps on fresh real and generated minibatches, then one generator step; an
optional EMA of G; callbacks after every step. Every feature (loss, penalties, augmentation,
logging, checkpoints, the watchdog) lives outside this loop.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.config import Config, apply_overrides, from_dict, save_config, to_dict
from gankit.data.source import BatchSampler, Dataset, load_dataset
from gankit.errors import CheckpointError, ConfigError, TrainingError
from gankit.generator import DISCRIMINATOR_PREFIX, Generator, load_generator
from gankit.modeldir import write_model_dir
from gankit.nets import architecture_spec, build_discriminator, build_generator
from gankit.objectives import Objective, build_objective
from gankit.train import callbacks as cb
from gankit.train.checkpoint import load_state, save_state
from gankit.train.distributed import DistContext, init_distributed, shutdown
from gankit.train.ema import EMA
from gankit.train.watch import Divergence, Watchdog

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}


def make_optimizer(name: str, params, lr: float, betas: list[float], momentum: float):
    """An optimizer by name with the config's hyper-parameters."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    return OPTIMIZERS[name](params, lr=lr, momentum=momentum)


@dataclass
class Run:
    """The result of a training run."""

    path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0

    @property
    def generator(self) -> Generator:
        return load_generator(self.path)


class Trainer:
    """Owns the networks, optimizers and RNGs of one run; `fit()` trains it."""

    def __init__(
        self,
        cfg: Config,
        run_dir: str | os.PathLike,
        ctx: DistContext | None = None,
        objective: Objective | None = None,
    ) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.ctx = ctx or init_distributed(cfg.train.device)
        self.device = self.ctx.device
        torch.manual_seed(cfg.train.seed)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True)
        self.dataset: Dataset = load_dataset(cfg.data)
        self.arch = architecture_spec(to_dict(cfg.model), self.dataset.shape)
        self.generator = build_generator(self.arch).to(self.device)
        self.discriminator = build_discriminator(self.arch).to(self.device)
        self.g = self.ctx.wrap(self.generator)
        self.d = self.ctx.wrap(self.discriminator)
        t = cfg.train
        self.opt_g = make_optimizer(
            t.optimizer, self.generator.parameters(), t.lr_g, t.betas, t.momentum
        )
        self.opt_d = make_optimizer(
            t.optimizer, self.discriminator.parameters(), t.lr_d, t.betas, t.momentum
        )
        self.ema = EMA(self.generator, t.ema) if t.ema > 0 else None
        self.objective = objective or build_objective(cfg.objective)
        self.sampler = BatchSampler(len(self.dataset.x), t.batch_size, t.seed)
        self.noise = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_noise = torch.randn(
            64, cfg.model.latent_dim, generator=torch.Generator().manual_seed(t.seed + 2)
        )
        self.step, self.batches, self.rollbacks = 0, 0, 0
        self.total_steps = t.steps
        self.watchdog = Watchdog(t.d_win_patience)

    # --- one step of Algorithm 1 --------------------------------------------------------------
    def autocast(self):
        """bf16 autocast on CUDA (amp: auto/bf16), otherwise nothing."""
        amp = self.cfg.train.amp
        if self.device.type == "cuda" and amp in ("auto", "bf16"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def real_batch(self) -> torch.Tensor:
        """The next minibatch of real samples (this rank's slice)."""
        idx = self.ctx.shard(self.sampler.indices(self.batches))
        self.batches += 1
        return self.dataset.x[idx].to(self.device, non_blocking=True)

    def latent_batch(self) -> torch.Tensor:
        """Noise for one global minibatch, sliced for this rank."""
        z = torch.randn(self.cfg.train.batch_size, self.cfg.model.latent_dim, generator=self.noise)
        return self.ctx.shard(z).to(self.device, non_blocking=True)

    def _update(self, loss: torch.Tensor, module: nn.Module, optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.train.grad_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), self.cfg.train.grad_clip)
        optimizer.step()

    def train_step(self) -> dict[str, float]:
        """k discriminator updates, then one generator update; returns statistics."""
        stats: dict[str, float] = {}
        for _ in range(self.cfg.train.d_steps):
            real = self.real_batch()
            with torch.no_grad(), self.autocast():
                fake = self.g(self.latent_batch())
            with self.autocast():
                loss_d, stats = self.objective.discriminator_loss(self.d, real, fake)
            self._update(loss_d, self.discriminator, self.opt_d)
            self.objective.after_discriminator_step(self.discriminator)
        with self.autocast():
            loss_g = self.objective.generator_loss(self.d, self.g(self.latent_batch()), real)
        self._update(loss_g, self.generator, self.opt_g)
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()), **stats}

    # --- the loop -----------------------------------------------------------------------------
    def callbacks(self) -> list:
        """EMA, then the watchdog (so nothing is saved from a diverged step), then the writers."""
        t = self.cfg.train
        items: list = [] if self.ema is None else [cb.EMAUpdate(self.ema, self.generator)]
        if t.lr_decay != "none":
            items.append(cb.LRDecay(t.lr_decay))
        items.append(self.watchdog)
        if self.ctx.is_main:
            items += [
                cb.MetricsLog(self.run_dir / "metrics.jsonl", t.log_every),
                cb.SampleGrid(self.run_dir / "samples", t.sample_every),
                cb.Checkpointer(t.checkpoint_every),
            ]
            if t.progress:
                items.append(cb.Progress(self.total_steps, self.step))
            if t.tensorboard:
                items.append(cb.TensorBoard(self.run_dir / "tensorboard", t.log_every))
        return items

    def fit(self) -> Run:
        """Train until `train.steps` generator updates; returns the Run."""
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")
        callbacks = self.callbacks()
        self.generator.train()
        self.discriminator.train()
        while self.step < self.total_steps:
            stats = self.train_step()
            self.step += 1
            try:
                for callback in callbacks:
                    callback.on_step(self, stats)
            except Divergence as exc:
                self.recover(exc)
        for callback in callbacks:
            callback.on_end(self)
        from gankit.viz import read_history

        return Run(self.run_dir, read_history(self.run_dir / "metrics.jsonl"), self.step)

    def recover(self, exc: Divergence) -> None:
        """Roll back to the last checkpoint with lower learning rates, or stop with a message."""
        t = self.cfg.train
        has_checkpoint = (self.run_dir / "state.pt").is_file()
        if t.on_divergence == "rollback" and self.rollbacks < t.max_rollbacks and has_checkpoint:
            self.load_checkpoint(self.run_dir)
            self.rollbacks += 1
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] *= t.rollback_lr_factor**self.rollbacks
            self.watchdog.reset()
            return
        where = (
            f"the last good checkpoint (step {self._checkpoint_step()}) is in {self.run_dir}"
            if has_checkpoint
            else "no checkpoint was written yet"
        )
        raise TrainingError(f"training stopped: {exc}; {where}") from exc

    def _checkpoint_step(self) -> int:
        return int(load_state(self.run_dir)["step"])

    # --- state --------------------------------------------------------------------------------
    def fixed_samples(self) -> torch.Tensor:
        """Samples of the (EMA) generator from the run's fixed noise."""
        net = self.ema.shadow if self.ema is not None else self.generator
        was_training = net.training
        net.eval()
        with torch.no_grad():
            out = net(self.fixed_noise.to(self.device)).float().cpu()
        net.train(was_training)
        return out

    def model_spec(self) -> dict[str, Any]:
        """model.json contents (without the weights hash, added on write)."""
        from gankit import __version__

        return {
            "kind": "image-generator" if self.dataset.is_image else "toy-generator",
            "architecture": self.arch,
            "latent_dim": self.cfg.model.latent_dim,
            "num_classes": None,
            "data": self.dataset.spec(),
            "preprocessing": {
                "range": [-1, 1] if self.dataset.is_image else None,
                "description": "pixels scaled linearly to [-1, 1]"
                if self.dataset.is_image
                else "raw coordinates",
            },
            "ema": self.ema is not None,
            "step": self.step,
            "config": to_dict(self.cfg),
            "gankit_version": __version__,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (tensors and numbers only)."""
        state = {
            "step": self.step,
            "batches": self.batches,
            "rollbacks": self.rollbacks,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng_noise": self.noise.get_state(),
            "rng_torch": torch.get_rng_state(),
            "watchdog_streak": self.watchdog.streak,
            "objective": self.objective.state_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        return state

    def save_checkpoint(self) -> None:
        """state.pt first, then the model directory (both atomic)."""
        if not self.ctx.is_main:
            return
        save_state(self.run_dir, self.state_dict())
        weights = (self.ema.shadow if self.ema is not None else self.generator).state_dict()
        weights.update(
            {DISCRIMINATOR_PREFIX + k: v for k, v in self.discriminator.state_dict().items()}
        )
        write_model_dir(self.run_dir, weights, self.model_spec())

    def load_checkpoint(self, run_dir: str | os.PathLike) -> None:
        """Restore everything from `run_dir/state.pt`."""
        state = load_state(run_dir)
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"{run_dir}/state.pt does not fit this run's config ({exc})"
            ) from exc
        self.step, self.batches = int(state["step"]), int(state["batches"])
        self.rollbacks = int(state.get("rollbacks", 0))
        self.watchdog.streak = int(state.get("watchdog_streak", 0))
        self.objective.load_state_dict(state.get("objective", {}))
        self.noise.set_state(state["rng_noise"])
        torch.set_rng_state(state["rng_torch"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])


def _truncate_history(run_dir: Path, step: int) -> None:
    """Drop metrics logged after the checkpoint we resume from (they will be logged again)."""
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        import json

        keep = [
            line
            for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["step"] <= step
        ]
        path.write_text("".join(line + "\n" for line in keep))


def train(cfg: Config, out: str | os.PathLike | None = None) -> Run:
    """Train a GAN as configured; the run directory is `out` or `cfg.out`."""
    run_dir = Path(out or cfg.out)
    if (run_dir / "state.pt").exists():
        raise ConfigError(
            f"{run_dir} already holds a run; resume it with `gankit train --resume "
            f"{run_dir}` or choose another --out"
        )
    trainer = Trainer(cfg, run_dir)
    try:
        return trainer.fit()
    finally:
        shutdown(trainer.ctx)


def resume(run_dir: str | os.PathLike, overrides: list[str] | None = None) -> Run:
    """Continue a stopped run (optionally with overrides, e.g. a larger train.steps)."""
    import yaml

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: missing; {run_dir} is not a gankit run directory")
    values = yaml.safe_load(config_path.read_text())
    cfg = from_dict(apply_overrides(values, list(overrides or [])))
    trainer = Trainer(cfg, run_dir)
    trainer.load_checkpoint(run_dir)
    if trainer.ctx.is_main:
        _truncate_history(run_dir, trainer.step)
    try:
        return trainer.fit()
    finally:
        shutdown(trainer.ctx)
