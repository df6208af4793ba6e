"""`gankit bench cyclegan`: unpaired translation between digits and changed digits.

Protocol. Domains (`data.domains` of `configs/digits-cyclegan.yaml`: `digits-thick`; from
Python, `run(overrides=["data.domains=digits-mirror", ...])`): the digits train split (1,437) is
shuffled with the seed and halved; A = the first half as it is, B = the second half changed
(strokes thickened by a one-pixel halo, or mirrored left to right), so no image (nor its changed
copy) is in both sets. CycleGAN trains on them for each seed. Scoring on the held-out test split
(360 digits, halved the same way):

* **digit kept**: the shipped digits classifier (`gankit.metrics.features`) agrees with the
  digit's label on G(a) (A -> B; mirrored back for `digits-mirror`, read as it is for thick
  strokes) and on F(b) (B -> A). References: the classifier on the real test halves
  (`real_digit_a`, `real_digit_b`: the ceiling of each direction).
* **target domain**: a domain classifier trained on real images only (scikit-learn MLP, one
  hidden layer of 128, on the train split's A and B halves) calls G(a) "B" and F(b) "A".
  Reference: its accuracy on the real test halves.
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
MIRROR = "digits-mirror"
QUICK = ["train.steps=20", "model.g_width=8", "model.d_width=8"]
GOAL = 0.90


def domain_classifier(pair: str, seed: int = 0):
    """An MLP telling real A (0) from real B (1), trained on the train split's two halves."""
    from sklearn.neural_network import MLPClassifier

    from gankit.data.unpaired import builtin_domains

    data = builtin_domains(pair, "train", seed)
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


def undo(pair: str, x: torch.Tensor) -> torch.Tensor:
    """Domain B's change undone where it can be (a mirror); thickened strokes are read as they
    are (the digits classifier reads real thickened digits: `real_digit_b`)."""
    from gankit.data.unpaired import mirror

    return mirror(x) if pair == MIRROR else x


def score(model: Any, pair: str, seed: int, clf) -> dict[str, float]:
    """Every figure of one trained model (a CycleGAN or a loaded one) on the test halves."""
    from gankit.data.unpaired import builtin_domains

    test = builtin_domains(pair, "test", seed)
    ab, ba = model.translate(test.a, "a2b"), model.translate(test.b, "b2a")
    aba, bab = model.translate(ab, "b2a"), model.translate(ba, "a2b")
    return {
        "a2b_digit": digit_accuracy(undo(pair, ab), test.labels_a),
        "b2a_digit": digit_accuracy(ba, test.labels_b),
        "a2b_domain": domain_accuracy(clf, ab, 1),
        "b2a_domain": domain_accuracy(clf, ba, 0),
        "cycle_l1_a": float((aba - test.a).abs().mean()),
        "cycle_l1_b": float((bab - test.b).abs().mean()),
        "real_digit_a": digit_accuracy(test.a, test.labels_a),
        "real_digit_b": digit_accuracy(undo(pair, test.b), test.labels_b),
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
    start = time.process_time()
    trainer.fit()
    return trainer.model, time.process_time() - start, cfg.data.domains


def run(
    quick: bool = False, seeds: int | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Train the recipe (with `overrides`) per seed and score translations of held-out digits."""
    n_seeds = seeds or (1 if quick else 3)
    extra = [*(QUICK if quick else []), *(overrides or [])]
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(n_seeds):
            model, seconds, pair = train(seed, extra, Path(tmp) / f"cyclegan-{seed}")
            row = score(model, pair, seed, domain_classifier(pair, seed))
            row["train_cpu_s"] = seconds
            per_seed.append(row)
            print(f"cyclegan seed {seed}: {row}", file=sys.stderr, flush=True)
    summary = {k: mean_se([r[k] for r in per_seed]) for k in per_seed[0]}

    def cell(key: str) -> str:
        mean, se = summary[key]
        return f"{mean:.3f} ± {se:.3f}"

    rows = [
        ["A -> B (G)", cell("a2b_digit"), cell("a2b_domain"), cell("cycle_l1_a")],
        ["B -> A (F)", cell("b2a_digit"), cell("b2a_domain"), cell("cycle_l1_b")],
        [
            "real test A / B",
            f"{cell('real_digit_a')} / {cell('real_digit_b')}",
            cell("real_domain"),
            "-",
        ],
    ]
    table = format_table(
        ["direction", "digit kept", "target domain", "cycle L1 (a->b->a / b->a->b)"], rows
    )
    met = all(summary[k][0] >= GOAL for k in ("a2b_digit", "b2a_digit", "a2b_domain", "b2a_domain"))
    return {
        "protocol": {
            "domains": "the digits split halved at random (seed); B changed (data.domains)",
            "recipe": f"configs/{RECIPE}",
            "overrides": extra,
            "digit_kept": "shipped digits classifier on G(a) (mirrored back for digits-mirror) "
            "and on F(b), test split",
            "target_domain": "sklearn MLPClassifier(128) trained on the real train halves",
            "cycle_error": "mean |F(G(a)) - a|, |G(F(b)) - b| per pixel, pixels in [-1, 1]",
            "seeds": n_seeds,
        },
        "goal": {"digit_kept": GOAL, "target_domain": GOAL, "met": met},
        "per_seed": per_seed,
        "summary": {k: {"mean": m, "se": s} for k, (m, s) in summary.items()},
        "table": table,
    }
