"""`gankit bench digits`: the best recipe on scikit-learn's 8×8 digits against the real floor.

Real = the train split (1,437 images, what the GAN trains on); held-out = the test split (360).
For every seed, 5 disjoint sets of 360 generated digits are each compared with the train split
exactly as the held-out split is (equal set sizes, since FD and the k-NN metrics depend on
them): digits-FD (128-d features of the shipped classifier), precision/recall (k = 3),
density/coverage (k = 5), and memorisation (pixel nearest-training-image distances of the fakes
against those of the held-out digits: `copy_fraction` ≈ 0.01 and `distance_ratio` ≥ 1 mean no
copying). The floor row is the held-out split itself.
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.bench.common import format_table, mean_se
from gankit.bench.images import Recipe, recipe_sources, run_recipes
from gankit.data import load_digits
from gankit.metrics import frechet_distance, memorization, precision_recall
from gankit.metrics.features import digits_extractor
from gankit.metrics.prdc import density_coverage

CHUNKS = 5
RECIPES = [
    Recipe("plain DCGAN", "digits-dcgan-plain.yaml"),
    Recipe("best recipe", "digits-dcgan.yaml", note="the demo recipe (+ EMA)", rejection=True),
    # issue 12: the self-conditioned projection cDCGAN (k-means clusters as labels, sampled by
    # their shares: the generator alone, no rejection)
    Recipe(
        "self-conditioned cDCGAN",
        "digits-selfcond-hinge.yaml",
        note="K = 20, MSGAN λ = 0.2, hinge, SN in D",
    ),
]
QUICK = ["train.steps=30", "model.g_width=8", "model.d_width=8"]
KEYS = ("fd", "precision", "recall", "density", "coverage", "copy_fraction", "distance_ratio")


def score(fake: torch.Tensor, real: torch.Tensor, held: torch.Tensor) -> dict[str, float]:
    """All figures for one set of images [n, 1, 8, 8] in [-1, 1] against the train split."""
    ext = digits_extractor()
    fr, ff = ext.features(real), ext.features(fake)
    out = {"fd": frechet_distance(real=fr, fake=ff)}
    out.update(precision_recall(real=fr, fake=ff, k=3))
    out.update(density_coverage(real=fr, fake=ff, k=5))
    mem = memorization(train=real, fake=fake, heldout=held)
    out["copy_fraction"] = mem["copy_fraction"]
    out["distance_ratio"] = mem["distance_ratio"]
    out["exact_copies"] = mem["exact_copies"]
    return out


def score_chunks(fake: torch.Tensor, real: torch.Tensor, held: torch.Tensor) -> dict[str, float]:
    """The mean of `score` over disjoint held-out-sized chunks of `fake`."""
    size = len(held)
    chunks = [score(fake[i * size : (i + 1) * size], real, held) for i in range(len(fake) // size)]
    return {k: sum(c[k] for c in chunks) / len(chunks) for k in chunks[0]}


def run(quick: bool = False, seeds: int | None = None, steps: int | None = None) -> dict[str, Any]:
    """Train and score each recipe over seeds (quick: 30 steps, tiny nets)."""
    n_seeds = seeds or (1 if quick else 5)
    real, _ = load_digits("train")
    held, _ = load_digits("test")
    n_fake = len(held) * (1 if quick else CHUNKS)
    extra = QUICK if quick else []
    if steps is not None:
        extra = [*extra, f"train.steps={steps}"]
    rows: dict[str, Any] = {
        "held-out real (floor)": _summary([score(held, real, held)], "test split")
    }
    scores, timings = run_recipes(
        RECIPES, n_seeds, extra, n_fake, lambda fake: score_chunks(fake, real, held)
    )
    sources = recipe_sources(RECIPES)
    rows.update({row: _summary(values, sources[row]) for row, values in scores.items()})
    ext = digits_extractor()
    table = format_table(
        ["row", "seeds", "digits-FD", "precision", "recall", "density", "coverage", "copy frac"],
        [[name, len(r["per_seed"])] + [_fmt(r[k]) for k in KEYS[:-1]] for name, r in rows.items()],
    )
    return {
        "protocol": {
            "real": f"load_digits('train'), n={len(real)}",
            "heldout": f"load_digits('test'), n={len(held)}",
            "fake_per_seed": n_fake,
            "chunk_size": len(held),
            "extractor": ext.name,
            "extractor_sha256": ext.sha256,
            "pr_k": 3,
            "dc_k": 5,
            "memorization": "pixel nearest-train distances vs held-out's",
            "seeds": n_seeds,
            "overrides": extra,
        },
        "measured": rows,
        "published": [],
        "published_note": "no published protocol for 8×8 digits; the floor is the reference",
        "train_seconds": timings,
        "table": table,
    }


def _fmt(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f}±{stat['se']:.3f}"


def _summary(scores: list[dict[str, float]], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {"source": source, "per_seed": scores}
    for key in KEYS:
        mean, se = mean_se([s[key] for s in scores])
        out[key] = {"mean": mean, "se": se}
    return out
