"""Train and score self-conditioned rows one seed at a time (issue 12, mode coverage).

`gankit bench ring|grid|mode-coverage` write their JSON only when every seed of every row is
done; on a loaded 2-core machine that can outlast a session. This script runs the same rows
(`gankit.bench.ring/grid.RECIPES`, `gankit.bench.mode_coverage.layout_recipes`) with the same
training and scoring (`train_recipe`, 2,500 samples from noise seed 2333, `mixture_modes`),
appending one JSON line per finished seed, so a cut-off run keeps what it measured.

    python scripts/mode_coverage_seeds.py OUT.jsonl LAYOUT:ROW:SEED ...

LAYOUT is ring, grid or a mode-coverage layout (ring16, grid7, ring-pacgan-protocol,
grid-pacgan-protocol); ROW 0 is the self-conditioned recipe, 1 its ablation without
conditioning. Seed 0's samples are plotted to docs/benchmarks/plots/.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from gankit.bench import grid, mode_coverage, ring
from gankit.bench.images import CONFIGS, train_recipe
from gankit.bench.mixture import N_SAMPLES, SCORE_SEED, _plot, _score, _slug, mixture_of
from gankit.config import load_config
from gankit.data.toy import sample_mixture

PLOTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "plots"


def recipes(layout: str) -> list:
    """The self-conditioned row and its ablation for a layout."""
    if layout in ("ring", "grid"):
        return (ring if layout == "ring" else grid).RECIPES[2:]
    return mode_coverage.layout_recipes(layout)


def main(out: str, jobs: list[str]) -> None:
    torch.set_num_threads(1)
    for job in jobs:
        layout, which, seed = job.split(":")
        recipe = recipes(layout)[int(which)]
        means, std = mixture_of(load_config(CONFIGS / recipe.config, recipe.overrides).data)
        rows, took = train_recipe(recipe, int(seed), [], N_SAMPLES, SCORE_SEED)
        samples = rows[recipe.name][0]
        score = _score(samples, means, std)
        if seed == "0":
            real = sample_mixture(means, N_SAMPLES, std, seed=SCORE_SEED)
            path = PLOTS / f"{layout}-{_slug(recipe.name)}.png"
            _plot(samples, means, real, path, recipe.name)
        record = {
            "layout": layout,
            "row": recipe.name,
            "config": recipe.config,
            "overrides": recipe.overrides,
            "seed": int(seed),
            "train_seconds": round(took, 1),
            **score,
            "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(layout, recipe.name, seed, score["modes"], round(score["hq_percent"], 1), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
