"""Shared machinery of the `stacked-digits` and `digits` benchmarks: train a recipe per seed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gankit.config import load_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def train_images(
    config: str, seed: int, overrides: list[str], n: int, sample_seed: int = 2333
) -> tuple[torch.Tensor, float]:
    """Train `configs/<config>` for one seed; n samples of its (EMA) generator and seconds."""
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
        samples = sample_trainer(trainer, n, sample_seed)
    return samples, time.perf_counter() - start


def sample_trainer(trainer: Any, n: int, seed: int, batch: int = 2000) -> torch.Tensor:
    """n samples of a trainer's (EMA) generator in eval mode, from seeded noise."""
    net = trainer.ema.shadow if trainer.ema is not None else trainer.generator
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, trainer.cfg.model.latent_dim, generator=gen)
    net.eval()
    with torch.no_grad():
        parts = [net(z[s : s + batch].to(trainer.device)).float().cpu() for s in range(0, n, batch)]
    return torch.cat(parts)
