"""`gankit bench mode-coverage`: does a mode-coverage recipe carry over to other mixtures?

The self-conditioned recipes of `gankit bench ring` / `grid` were written for the VEEGAN
layouts; here they are re-run unchanged (the same K = 100 clusters, networks and budget) on
mixtures of other scales and more modes, and on the PacGAN paper's protocol networks (z ∈ R²,
4×400 BN generator, maxout discriminator), each beside its ablation without conditioning (one
cluster). Scoring is the ring/grid benchmarks' (2,500 samples from noise seed 2333, HQ within 3σ
of the nearest mean, a mode counts with ≥ 1 HQ sample, reverse KL of the HQ histogram).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gankit.bench.images import CONFIGS
from gankit.bench.mixture import mixture_of, run_mixture, self_conditioned_recipes
from gankit.config import load_config

# layout -> (recipe family: configs/NAME-selfcond.yaml, data overrides)
LAYOUTS: dict[str, tuple[str, list[str]]] = {
    "ring16": ("ring", ["data.modes=16", "data.radius=2.0", "data.std=0.02"]),
    "grid7": ("grid", ["data.size=7", "data.spacing=1.0", "data.std=0.02"]),
    "ring-pacgan-protocol": ("ring-selfcond-pacgan", []),
    "grid-pacgan-protocol": ("grid-selfcond-pacgan", []),
}
PUBLISHED = {  # PacGAN Table 1 (research/mode_collapse.md): modes / % HQ, 400 epochs, 10 trials
    "ring-pacgan-protocol": [
        {"method": "GAN (PacGAN paper)", "modes": 6.3, "hq_percent": 98.2},
        {"method": "PacGAN2", "modes": 7.9, "hq_percent": 95.6},
    ],
    "grid-pacgan-protocol": [
        {"method": "GAN (PacGAN paper)", "modes": 17.3, "hq_percent": 94.8},
        {"method": "PacGAN4", "modes": 24.8, "hq_percent": 93.6},
    ],
}


def layout_recipes(layout: str):
    """The rows of one layout: the self-conditioned recipe and its no-conditioning ablation."""
    family, overrides = LAYOUTS[layout]
    if family.endswith("-pacgan"):  # its own config file: configs/{ring,grid}-selfcond-pacgan
        recipes = self_conditioned_recipes(family.removesuffix("-pacgan"), overrides)
        for recipe in recipes:
            recipe.config = f"{family}.yaml"
        return recipes
    return self_conditioned_recipes(family, overrides)


def run(
    quick: bool = False,
    seeds: int | None = None,
    plot_dir: str | None = None,
    layouts: list[str] | None = None,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Train and score every layout's rows (`layouts`, `only` rows of those names: subsets for
    runs that cannot afford all; quick: tiny nets, 150 steps, 1 seed)."""
    results, tables = {}, []
    for layout in layouts or list(LAYOUTS):
        recipes = [r for r in layout_recipes(layout) if only is None or r.name in only]
        cfg = load_config(CONFIGS / recipes[0].config, recipes[0].overrides)
        means, std = mixture_of(cfg.data)
        plots = None if plot_dir is None else Path(plot_dir)
        result = run_mixture(
            layout, means, std, recipes, PUBLISHED.get(layout, []), quick, seeds, plots
        )
        results[layout] = result
        tables.append(f"{layout}:\n{result['table']}")
    return {"layouts": results, "table": "\n\n".join(tables)}
