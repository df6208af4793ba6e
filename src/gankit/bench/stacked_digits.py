"""`gankit bench stacked-digits`: 1,000 modes from three stacked 8×8 digits.

An ANALOG of Stacked MNIST (research/mode_collapse.md §2), never comparable with its tables:
each channel is an independent, uniformly chosen scikit-learn digit (train split); 26,000
samples of the final generator are classified channel by channel with the shipped digits
classifier; the score is the number of distinct triples (of 1,000) and KL(p̂ ‖ U₁₀₀₀) in nats.
The noise floor scores 26,000 real stacks of held-out (test split) digits the same way: what a
perfect generator would get given the classifier's errors.
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.bench.common import format_table, mean_se
from gankit.bench.images import Recipe, recipe_sources, run_recipes
from gankit.data.stacked import stacked_digits
from gankit.metrics import classify_stacked, stacked_modes
from gankit.metrics.features import digits_extractor

N_SAMPLES = 26_000
RECIPES = [
    Recipe("plain DCGAN", "stacked-digits-dcgan.yaml"),
    Recipe("best recipe", "stacked-digits-best.yaml", rejection=True),
]
QUICK = ["train.steps=30", "model.g_width=8", "model.d_width=8", "data.n_samples=2048"]
PUBLISHED_NOTE = (
    "No published numbers exist for this analog. For scale only (different data and "
    "classifier): PacGAN Table 2 reports 1000 modes / KL 0.06 for PacDCGAN2 on Stacked MNIST "
    "(setting A), and DCGAN 99 modes / KL 3.4 (VEEGAN Table 2)."
)


def score(images: torch.Tensor) -> dict[str, Any]:
    """Distinct triples and KL to uniform of stacked images [N, 3, 8, 8] in [-1, 1]."""
    labels = classify_stacked(images, digits_extractor().model)
    return stacked_modes(labels)


def noise_floor(n: int = N_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """The score of n real stacks of held-out digits."""
    x, _ = stacked_digits(n, split="test", seed=seed)
    return score(x)


def run(quick: bool = False, seeds: int | None = None, steps: int | None = None) -> dict[str, Any]:
    """Train and score each recipe over seeds (quick: 30 steps, tiny nets, 2,600 samples)."""
    n_seeds = seeds or (1 if quick else 5)
    n = N_SAMPLES // 10 if quick else N_SAMPLES
    extra = QUICK if quick else []
    if steps is not None:
        extra = [*extra, f"train.steps={steps}"]
    rows: dict[str, Any] = {}
    floors = [noise_floor(n, seed) for seed in range(n_seeds)]
    rows["real stacks (noise floor)"] = _summary(floors, "test-split digits stacked")
    scores, timings = run_recipes(RECIPES, n_seeds, extra, n, score)
    sources = recipe_sources(RECIPES)
    rows.update({row: _summary(values, sources[row]) for row, values in scores.items()})
    ext = digits_extractor()
    table = format_table(
        ["row", "seeds", "modes (of 1000)", "KL(p̂‖U)"],
        [
            [
                name,
                len(r["per_seed"]),
                f"{r['modes']['mean']:.1f}±{r['modes']['se']:.1f}",
                f"{r['kl']['mean']:.3f}±{r['kl']['se']:.3f}",
            ]
            for name, r in rows.items()
        ],
    )
    return {
        "protocol": {
            "samples": n,
            "seeds": n_seeds,
            "classifier": ext.name,
            "classifier_sha256": ext.sha256,
            "modes": "distinct (d1, d2, d3) triples; KL(p̂‖Uniform_1000) in nats",
            "overrides": extra,
        },
        "measured": rows,
        "published": [],
        "published_note": PUBLISHED_NOTE,
        "train_seconds": timings,
        "table": table,
    }


def _summary(scores: list[dict[str, Any]], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": source,
        "per_seed": [{k: s[k] for k in ("modes", "kl", "acceptance") if k in s} for s in scores],
    }
    for key in ("modes", "kl"):
        mean, se = mean_se([s[key] for s in scores])
        out[key] = {"mean": mean, "se": se}
    return out
