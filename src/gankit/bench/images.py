"""Shared machinery of the quality benchmarks: train a recipe per seed, sample it."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gankit.config import load_config
from gankit.rejection import discriminator_sampler

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# A benchmark pays whatever rejection sampling costs and reports it (the acceptance of every
# seed is in the results), so its floor is far below the library default of 1e-3.
BENCH_MIN_ACCEPTANCE = 1e-5


@dataclass
class Recipe:
    """What to train for a benchmark row: a config file, overrides, a note, and how to sample
    (with `rejection`, the recipe yields its row and an ablation row without rejection)."""

    name: str
    config: str
    overrides: list[str] = field(default_factory=list)
    note: str = ""
    rejection: bool = False  # sample by discriminator rejection sampling (gankit.rejection)
    rejection_quantile: float = 1.0  # < 1 caps the density ratio (RejectionSampler)


ABLATION_SUFFIX = " without rejection (ablation)"


def train_recipe(
    recipe: Recipe, seed: int, extra: list[str], n: int, sample_seed: int = 2333
) -> tuple[dict[str, tuple[torch.Tensor, float | None]], float]:
    """Train one seed of a recipe; {row name: (n samples, acceptance)} and the seconds taken.

    A recipe with `rejection` yields two rows from the same trained model: its samples drawn by
    discriminator rejection sampling, and the plain first-n draws as the ablation row.
    """
    from gankit.engine.runs import build_trainer

    base = [*recipe.overrides, *extra, f"train.seed={seed}"]
    if hasattr(load_config(CONFIGS / recipe.config, base).data, "seed"):
        base.append(f"data.seed={seed}")  # data drawn at random (toy mixtures, stacked digits)
    steps = load_config(CONFIGS / recipe.config, base).train.steps
    quiet = [
        "train.progress=false",
        f"train.checkpoint_every={steps}",
        f"train.sample_every={steps}",
        f"train.log_every={max(1, steps // 10)}",
    ]
    cfg = load_config(CONFIGS / recipe.config, base + quiet)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        trainer = build_trainer(cfg, tmp)
        trainer.fit()
        rows = {
            recipe.name: sample_trainer(
                trainer, n, sample_seed, recipe.rejection, recipe.rejection_quantile
            )
        }
        if recipe.rejection:
            rows[recipe.name + ABLATION_SUFFIX] = sample_trainer(trainer, n, sample_seed)
    return rows, time.perf_counter() - start


def recipe_sources(recipes: list[Recipe]) -> dict[str, str]:
    """Row name → where it comes from (the config file, and how it was sampled)."""
    out = {}
    for recipe in recipes:
        source = f"configs/{recipe.config}" + "".join(f" --set {o}" for o in recipe.overrides)
        if recipe.rejection:
            q = "" if recipe.rejection_quantile == 1 else f" (quantile {recipe.rejection_quantile})"
            out[recipe.name] = source + f", sampled by discriminator rejection{q}"
            out[recipe.name + ABLATION_SUFFIX] = source + ", first n draws"
        else:
            out[recipe.name] = source
    return out


def run_recipes(
    recipes: list[Recipe],
    n_seeds: int,
    extra: list[str],
    n: int,
    score: Callable[[torch.Tensor], dict[str, Any]],
    sample_seed: int = 2333,
    on_first_seed: Callable[[str, torch.Tensor], None] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Train and score every recipe over seeds: per-row score lists, per-recipe seconds."""
    scores: dict[str, list[dict[str, Any]]] = {}
    timings: dict[str, float] = {}
    for recipe in recipes:
        timings[recipe.name] = 0.0
        for seed in range(n_seeds):
            rows, took = train_recipe(recipe, seed, extra, n, sample_seed)
            timings[recipe.name] += took
            for row, (samples, acceptance) in rows.items():
                extra_fields = {} if acceptance is None else {"acceptance": acceptance}
                scores.setdefault(row, []).append({**score(samples), **extra_fields})
                if seed == 0 and on_first_seed is not None:
                    on_first_seed(row, samples)
    return scores, timings


def sample_trainer(
    trainer: Any,
    n: int,
    seed: int,
    rejection: bool = False,
    quantile: float = 1.0,
    batch: int = 2000,
) -> tuple[torch.Tensor, float | None]:
    """n samples of a trainer's (EMA) generator in eval mode from seeded noise; acceptance rate.

    Without `rejection` the first n draws of the seeded noise are the samples (acceptance None).
    """
    model = trainer.model
    if getattr(model, "num_classes", None) and not rejection:  # a class-conditional G: the
        return model.sample(n, seed=seed), None  # model draws the labels (and noise from seed)
    net, cfg = model.sampling_network("g"), model.cfg
    device = trainer.device
    net.eval()
    if rejection:
        sampler = discriminator_sampler(
            net,
            model.networks["d"],
            cfg.model.latent_dim,
            loss=cfg.objective.loss,
            pack=cfg.model.pack,
            device=device,
            batch_size=batch,
            quantile=quantile,
            min_acceptance=BENCH_MIN_ACCEPTANCE,
        )
        return sampler.sample(n, seed), sampler.acceptance
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.model.latent_dim, generator=gen)
    with torch.no_grad():
        parts = [net(z[s : s + batch].to(device)).float().cpu() for s in range(0, n, batch)]
    return torch.cat(parts), None
