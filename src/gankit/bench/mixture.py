"""Shared machinery of the `ring` and `grid` benchmarks (VEEGAN protocol, research notes §1).

Each row is a recipe: a YAML file in `configs/` plus overrides. For every seed the recipe is
trained with `Trainer`, then 2,500 samples of the final generator (its EMA when the recipe has
one) from a fixed noise set (or drawn through discriminator rejection sampling when the recipe
says so) are scored by `gankit.metrics.mixture_modes`: a sample is high
quality within 3σ of its nearest mean, a mode counts with ≥ 1 HQ sample, reverse KL is
KL(HQ histogram ‖ uniform). Means ± standard errors over seeds. A "real samples" row scores 2,500
draws from the mixture itself: the ceiling (≈ 98.9 % HQ), and a check of the scoring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gankit.bench.common import format_table, mean_se
from gankit.bench.images import Recipe, recipe_sources, run_recipes
from gankit.data.toy import sample_mixture
from gankit.errors import ConfigError
from gankit.metrics import mixture_modes

N_SAMPLES = 2500
SCORE_SEED = 2333  # the fixed noise set, as in PacGAN's MetricLogger
VEEGAN_SOURCE = "VEEGAN Table 1 (akashgit/VEEGAN tab.png); GDPP rows: Elfeki et al. Table 1"


QUICK_OVERRIDES = [
    "train.steps=150",
    "train.batch_size=64",
    "model.latent_dim=16",
    "model.g_width=32",
    "model.d_width=32",
    "data.n_samples=4096",
]


def summarise(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± s.e. of modes, % HQ and reverse KL over seeds, plus the per-seed values."""
    out: dict[str, Any] = {"per_seed": scores}
    for key in ("modes", "hq_percent", "reverse_kl"):
        mean, se = mean_se([s[key] for s in scores])
        out[key] = {"mean": mean, "se": se}
    return out


def _cell(summary: dict[str, Any]) -> str:
    m, h, k = summary["modes"], summary["hq_percent"], summary["reverse_kl"]
    return (
        f"{m['mean']:.1f}±{m['se']:.1f} / {h['mean']:.1f}±{h['se']:.1f} / "
        f"{k['mean']:.2f}±{k['se']:.2f}"
    )


def run_mixture(
    name: str,
    means: torch.Tensor,
    std: float,
    recipes: list[Recipe],
    published: list[dict[str, Any]],
    quick: bool,
    seeds: int | None,
    plot_dir: Path | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """Train and score every recipe over seeds; the result dict of a mixture benchmark.

    `steps` overrides every recipe's iteration budget (for runs that cannot afford the
    protocol's; the result records it).
    """
    n_seeds = seeds or (1 if quick else 5)
    extra = QUICK_OVERRIDES if quick else []
    if steps is not None:
        extra = [*extra, f"train.steps={steps}"]
    real = sample_mixture(means, N_SAMPLES, std, seed=SCORE_SEED)
    rows: dict[str, Any] = {"real samples": summarise([_score(real, means, std)])}
    rows["real samples"]["note"] = "2,500 draws from the mixture: the ceiling"

    def plot(row: str, samples: torch.Tensor) -> None:
        if plot_dir is not None:
            _plot(samples, means, real, plot_dir / f"{name}-{_slug(row)}.png", row)

    scores, timings = run_recipes(
        recipes, n_seeds, extra, N_SAMPLES, lambda x: _score(x, means, std), SCORE_SEED, plot
    )
    sources = recipe_sources(recipes)
    notes = {recipe.name: recipe.note for recipe in recipes}
    for row, values in scores.items():
        rows[row] = {**summarise(values), "source": sources[row], "note": notes.get(row, "")}
    table = _table(name, rows, published)
    return {
        "protocol": {
            "samples": N_SAMPLES,
            "score_noise_seed": SCORE_SEED,
            "hq_threshold_std": 3.0,
            "std": std,
            "modes": int(means.shape[0]),
            "seeds": n_seeds,
            "overrides": extra,
        },
        "measured": rows,
        "published": published,
        "published_source": VEEGAN_SOURCE,
        "train_seconds": timings,
        "table": table,
    }


def _score(samples: torch.Tensor, means: torch.Tensor, std: float) -> dict[str, Any]:
    m = mixture_modes(samples, means, std)
    return {k: m[k] for k in ("modes", "hq_percent", "reverse_kl", "hq_counts")}


def _table(name: str, rows: dict[str, Any], published: list[dict[str, Any]]) -> str:
    lines = [
        [p["method"], "published", f"{p['modes']} / {p['hq_percent']}", "–"] for p in published
    ]
    for row_name, row in rows.items():
        seeds = len(row["per_seed"])
        lines.append([f"gankit: {row_name}", f"measured, {seeds} seed(s)", _cell(row), ""])
    for line in lines[len(published) :]:
        line[2], line[3] = line[2].rsplit(" / ", 1)[0], line[2].rsplit(" / ", 1)[1]
    return format_table(["method", "source", f"{name}: modes / % HQ", "reverse KL"], lines)


def protocol_recipes(name: str) -> list[Recipe]:
    """The two measured rows of a mixture benchmark: the VEEGAN protocol's plain GAN
    (`configs/NAME-gan.yaml`) and gankit's best recipe (`configs/NAME-best.yaml` + rejection)."""
    return [
        Recipe("plain GAN (VEEGAN protocol)", f"{name}-gan.yaml", note="baseline reproduction"),
        Recipe("best recipe", f"{name}-best.yaml", note="see docs/recipes.md", rejection=True),
    ]


SELF_CONDITIONED = "self-conditioned GAN (k-means K=100)"
NO_CONDITIONING = "same networks, no conditioning (K=1, ablation)"


def self_conditioned_recipes(name: str, overrides: list[str] | None = None) -> list[Recipe]:
    """The self-conditioned rows (`configs/NAME-selfcond.yaml`, sampled by the generator alone)
    and their ablation: the same networks and budget with one cluster, i.e. no conditioning."""
    extra = list(overrides or [])
    return [
        Recipe(SELF_CONDITIONED, f"{name}-selfcond.yaml", extra, note="generator alone"),
        Recipe(
            NO_CONDITIONING,
            f"{name}-selfcond.yaml",
            [*extra, "model.num_classes=1"],
            note="one cluster: the unconditional GAN of the same networks",
        ),
    ]


def mixture_of(data: Any) -> tuple[torch.Tensor, float]:
    """(means, std) of a ring or grid `data` config section (std None: the preset's)."""
    from gankit.data.toy import GRID_PRESET, RING_PRESET, grid_means, ring_means

    if data.name == "ring":
        return ring_means(data.modes, data.radius), data.std or RING_PRESET["std"]
    if data.name == "grid":
        return grid_means(data.size, data.spacing), data.std or GRID_PRESET["std"]
    raise ConfigError(f"data.name = {data.name!r} is not a Gaussian mixture (ring or grid)")


def mixture_benchmark(
    name: str,
    means: torch.Tensor,
    std: float,
    recipes: list[Recipe],
    published: list[dict[str, Any]],
):
    """The `run()` of a mixture benchmark: ring and grid differ only in these arguments."""

    def run(
        quick: bool = False,
        seeds: int | None = None,
        plot_dir: str | None = None,
        steps: int | None = None,
        only: list[str] | None = None,
    ) -> dict[str, Any]:
        """Train and score the rows (quick: tiny nets, 150 steps, 1 seed; `only`: just the
        rows of these names, for a run that adds rows to an earlier one)."""
        chosen = [r for r in recipes if only is None or r.name in only]
        if not chosen:
            raise ConfigError(f"no row named {only!r}; rows: {[r.name for r in recipes]}")
        plots = _plot_dir(quick, plot_dir)
        return run_mixture(name, means, std, chosen, published, quick, seeds, plots, steps)

    return run


def _plot_dir(quick: bool, plot_dir: str | None) -> Path | None:
    """Where scatter plots go: `plot_dir`, else ./bench-plots for full runs, none for quick."""
    if plot_dir:
        return Path(plot_dir)
    return None if quick else Path.cwd() / "bench-plots"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _plot(samples, means, real, path: Path, row: str) -> None:
    from gankit.viz import plot_points

    plot_points(samples, path, real=real, means=means, title=f"{row} (seed 0)")
