"""Shared machinery of the quality benchmarks: train a recipe per seed, sample it."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gankit.config import load_config
from gankit.rejection import RejectionSampler, check_rejection_support

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@dataclass
class Recipe:
    """One measured row: a config file, overrides, and what it is."""

    name: str
    config: str
    overrides: list[str] = field(default_factory=list)
    note: str = ""
    rejection: bool = False  # sample by discriminator rejection sampling (gankit.rejection)


def train_images(
    config: str,
    seed: int,
    overrides: list[str],
    n: int,
    sample_seed: int = 2333,
    rejection: bool = False,
) -> tuple[torch.Tensor, float, float | None]:
    """Train `configs/<config>` for one seed; n samples, seconds, and the rejection acceptance.

    With `rejection` the samples are drawn by discriminator rejection sampling (the acceptance
    rate is returned; None without it).
    """
    from gankit.train.trainer import Trainer

    base = [*overrides, f"train.seed={seed}", f"data.seed={seed}", "train.progress=false"]
    steps = load_config(CONFIGS / config, base).train.steps
    quiet = [
        f"train.checkpoint_every={steps}",
        f"train.sample_every={steps}",
        f"train.log_every={max(1, steps // 10)}",
    ]
    cfg = load_config(CONFIGS / config, base + quiet)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        trainer = Trainer(cfg, tmp)
        trainer.fit()
        samples, acceptance = sample_trainer(trainer, n, sample_seed, rejection=rejection)
    return samples, time.perf_counter() - start, acceptance


def sample_trainer(
    trainer: Any, n: int, seed: int, batch: int = 2000, rejection: bool = False
) -> tuple[torch.Tensor, float | None]:
    """n samples of a trainer's (EMA) generator in eval mode from seeded noise; acceptance rate.

    Without `rejection` the first n draws of the seeded noise are the samples (acceptance None).
    """
    net = trainer.ema.shadow if trainer.ema is not None else trainer.generator
    device = trainer.device
    net.eval()
    if rejection:
        check_rejection_support(trainer.cfg.objective.loss, trainer.cfg.model.pack)
        disc = trainer.discriminator.eval()
        sampler = RejectionSampler(
            lambda z: net(z.to(device)).float().cpu(),
            lambda x: disc(x.to(device)).float().cpu(),
            trainer.cfg.model.latent_dim,
            batch_size=batch,
        )
        return sampler.sample(n, seed), sampler.acceptance
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, trainer.cfg.model.latent_dim, generator=gen)
    with torch.no_grad():
        parts = [net(z[s : s + batch].to(device)).float().cpu() for s in range(0, n, batch)]
    return torch.cat(parts), None
