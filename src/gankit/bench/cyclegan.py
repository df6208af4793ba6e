"""`gankit bench cyclegan`: unpaired translation between digits and mirrored digits.

Protocol. Domains (`data.domains: digits-mirror`): the digits train split (1,437) is shuffled
with the seed and halved; A = the first half as they are, B = the second half mirrored left to
right, so no image (nor its mirror) is in both sets. CycleGAN (`configs/digits-cyclegan.yaml`)
trains on them for each seed. Scoring on the held-out test split (360 digits, halved the same
way: 180 A, 180 B):

* **digit kept**: the shipped digits classifier (`gankit.metrics.features`) on G(a) mirrored
  back (A -> B; undoing the domain change) and on F(b) as it is (B -> A) agrees with the
  digit's label. Reference: the classifier's accuracy on the real test digits.
* **target domain**: a domain classifier trained on real images only (scikit-learn MLP, one
  hidden layer of 128, on the train split's A and B halves) calls G(a) "B" and F(b) "A".
  Reference: its accuracy on the real test halves (the best a translation can expect; a few
  digits such as 0, 1 and 8 are nearly mirror-symmetric).
* **cycle error**: mean |F(G(a)) - a| and |G(F(b)) - b| per pixel in [-1, 1] (pixels span 2).

Goals (issue 13): digit kept >= 0.90 and target domain >= 0.90 in both directions.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gankit.bench.common import format_table, mean_se

RECIPE = "digits-cyclegan.yaml"
QUICK = ["train.steps=20", "model.g_width=8", "model.d_width=8"]
GOAL = 0.90


def domain_classifier(seed: int = 0):
    """An MLP telling real A (0) from real B (1), trained on the train split's two halves."""
    from sklearn.neural_network import MLPClassifier

    from gankit.data.unpaired import builtin_domains

    data = builtin_domains("digits-mirror", "train", seed)
    x = torch.cat([data.a, data.b]).reshape(len(data.a) + len(data.b), -1).numpy()
    y = [0] * len(data.a) + [1] * len(data.b)
    return MLPClassifier((128,), max_iter=300, random_state=seed).fit(x, y)


def domain_accuracy(clf, x: torch.Tensor, domain: int) -> float:
    """Fraction of images the domain classifier assigns to `domain`."""
    return float((clf.predict(x.reshape(len(x), -1).numpy()) == domain).mean())


def digit_accuracy(x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images the shipped digits classifier reads as their label."""
    from gankit.metrics.features import digits_extractor

    return float((digits_extractor().logits(x).argmax(1) == labels).double().mean())


def score(model: Any, seed: int, clf) -> dict[str, float]:
    """Every figure of one trained model (a CycleGAN or a loaded one) on the test halves."""
    from gankit.data.unpaired import builtin_domains, mirror

    test = builtin_domains("digits-mirror", "test", seed)
    ab, ba = model.translate(test.a, "a2b"), model.translate(test.b, "b2a")
    aba, bab = model.translate(ab, "b2a"), model.translate(ba, "a2b")
    return {
        "a2b_digit": digit_accuracy(mirror(ab), test.labels_a),
        "b2a_digit": digit_accuracy(ba, test.labels_b),
        "a2b_domain": domain_accuracy(clf, ab, 1),
        "b2a_domain": domain_accuracy(clf, ba, 0),
        "cycle_l1_a": float((aba - test.a).abs().mean()),
        "cycle_l1_b": float((bab - test.b).abs().mean()),
        "real_digit": digit_accuracy(
            torch.cat([test.a, mirror(test.b)]), torch.cat([test.labels_a, test.labels_b])
        ),
        "real_domain": (domain_accuracy(clf, test.a, 0) + domain_accuracy(clf, test.b, 1)) / 2,
    }


def train(seed: int, extra: list[str], out: Path):
    """The recipe trained for one seed; returns (model, seconds)."""
    from gankit.bench.images import CONFIGS
    from gankit.config import load_config
    from gankit.engine.runs import build_trainer

    overrides = [f"train.seed={seed}", f"data.seed={seed}", "train.progress=false", *extra]
    cfg = load_config(CONFIGS / RECIPE, overrides)
    trainer = build_trainer(cfg, out)
    start = time.perf_counter()
    trainer.fit()
    return trainer.model, time.perf_counter() - start


def run(quick: bool = False, seeds: int | None = None, steps: int | None = None) -> dict[str, Any]:
    """Train the recipe per seed and score translations of the held-out digits."""
    n_seeds = seeds or (1 if quick else 3)
    extra = list(QUICK if quick else [])
    if steps is not None:
        extra.append(f"train.steps={steps}")
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(n_seeds):
            model, seconds = train(seed, extra, Path(tmp) / f"cyclegan-{seed}")
            row = score(model, seed, domain_classifier(seed))
            row["train_seconds"] = seconds
            per_seed.append(row)
            print(f"cyclegan seed {seed}: {row}", file=sys.stderr, flush=True)
    summary = {k: mean_se([r[k] for r in per_seed]) for k in per_seed[0]}

    def cell(key: str) -> str:
        mean, se = summary[key]
        return f"{mean:.3f} ± {se:.3f}"

    rows = [
        ["A -> B (G)", cell("a2b_digit"), cell("a2b_domain"), cell("cycle_l1_a")],
        ["B -> A (F)", cell("b2a_digit"), cell("b2a_domain"), cell("cycle_l1_b")],
        ["real test digits", cell("real_digit"), cell("real_domain"), "-"],
    ]
    table = format_table(
        ["direction", "digit kept", "target domain", "cycle L1 (a->b->a / b->a->b)"], rows
    )
    met = all(summary[k][0] >= GOAL for k in ("a2b_digit", "b2a_digit", "a2b_domain", "b2a_domain"))
    return {
        "protocol": {
            "domains": "digits-mirror: the digits split halved at random (seed); B mirrored",
            "recipe": f"configs/{RECIPE}",
            "overrides": extra,
            "digit_kept": "shipped digits classifier on mirror(G(a)) and on F(b), test split",
            "target_domain": "sklearn MLPClassifier(128) trained on the real train halves",
            "cycle_error": "mean |F(G(a)) - a|, |G(F(b)) - b| per pixel, pixels in [-1, 1]",
            "seeds": n_seeds,
        },
        "goal": {"digit_kept": GOAL, "target_domain": GOAL, "met": met},
        "per_seed": per_seed,
        "summary": {k: {"mean": m, "se": s} for k, (m, s) in summary.items()},
        "table": table,
    }
