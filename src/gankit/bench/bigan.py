"""`gankit bench bigan`: encoders learned adversarially on scikit-learn's 8×8 digits.

Protocol. Data: the fixed train (1,437) / test (360) split of `gankit.data.load_digits`, pixels
in [-1, 1]. Per seed, each recipe is trained on the train split and scored on the test split:

* linear probe: a logistic regression (scikit-learn, standardised inputs) trained on the
  encoder's codes mu(x) of the train split, accuracy on the test split's codes; beside it the
  same classifier on PCA features of the same size (PCA fitted on the train split);
* reconstruction agreement: the share of test digits x whose reconstruction G(E(x)) (the
  decoder at the code mu(x)) the shipped digits classifier assigns to x's label; beside it the
  classifier's accuracy on the real test digits (the ceiling) and the pixel MSE;
* samples: digits-FD etc. of decoder samples exactly as `gankit bench digits` and `gankit bench
  vae` score them (5 × 360 samples against the train split).

Rows: the BiGAN recipe (`configs/digits-bigan.yaml`, ALI's stochastic encoder plus ALICE's
reconstruction term), the same without the reconstruction term (BiGAN / ALI as published), and
the VAE-GAN recipe (`configs/digits-vaegan.yaml`). Goals (issue 13): the BiGAN probe beats
PCA's; reconstruction agreement >= 0.80.
"""

from __future__ import annotations

import sys
import tempfile
import time
from typing import Any

import torch

from gankit.bench.common import format_table, mean_se

RECIPES = {
    "BiGAN/ALI + ALICE term (recipe)": ("digits-bigan.yaml", []),
    "BiGAN/ALI, adversarial only": ("digits-bigan.yaml", ["model.reconstruction_weight=0"]),
    "VAE-GAN (recipe)": ("digits-vaegan.yaml", []),
}
QUICK = {
    "digits-bigan.yaml": ["model.g_widths=[16]", "model.e_widths=[16]", "model.d_widths=[16]"],
    "digits-vaegan.yaml": ["model.widths=[16]", "model.d_widths=[16]"],
}
QUICK_STEPS = 30
KEYS = ("probe_encoder", "probe_pca", "recon_agreement", "recon_mse", "fd")
GOALS = {"probe_encoder_minus_pca": 0.0, "recon_agreement": 0.80}
REFERENCES = {  # measured with the same sample protocol (docs/benchmarks.md)
    "VAE, configs/digits-vae.yaml (gankit bench vae)": 4.40,
    "plain DCGAN (gankit bench digits)": 1.045,
    "best GAN recipe (gankit bench digits)": 1.066,
}


def linear_probe(train_x: Any, train_y: Any, test_x: Any, test_y: Any) -> float:
    """Test accuracy of a standardised logistic regression fitted on (train_x, train_y)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return float(clf.fit(train_x, train_y).score(test_x, test_y))


def pca_probe(train: torch.Tensor, train_y: Any, test: torch.Tensor, test_y: Any, k: int) -> float:
    """The linear probe on k PCA components of the pixels (PCA fitted on the train split)."""
    from sklearn.decomposition import PCA

    a, b = train.reshape(len(train), -1).numpy(), test.reshape(len(test), -1).numpy()
    pca = PCA(n_components=k, random_state=0).fit(a)
    return linear_probe(pca.transform(a), train_y, pca.transform(b), test_y)


def score_encoder(model: Any, seed: int, quick: bool) -> dict[str, float]:
    """Probe, PCA probe, reconstruction agreement and MSE, sample scores of a loaded model."""
    from gankit.bench.digits import score_chunks
    from gankit.data import load_digits
    from gankit.metrics.features import digits_extractor

    train, train_y = load_digits("train")
    test, test_y = load_digits("test")
    codes, test_codes = model.encode(train).numpy(), model.encode(test).numpy()
    rec = model.reconstruct(test)
    agree = digits_extractor().logits(rec).argmax(1) == test_y
    fake = model.sample(len(test) * (1 if quick else 5), seed=seed).clamp(-1, 1)
    return {
        "probe_encoder": linear_probe(codes, train_y.numpy(), test_codes, test_y.numpy()),
        "probe_pca": pca_probe(train, train_y.numpy(), test, test_y.numpy(), codes.shape[1]),
        "recon_agreement": float(agree.float().mean()),
        "recon_mse": float((rec - test).square().mean()),
        **{k: v for k, v in score_chunks(fake, train, test).items() if k in ("fd",)},
    }


def train_and_score(recipe: str, extra: list[str], seed: int, quick: bool) -> dict[str, float]:
    """Train one seed of a recipe in a temporary directory; score the saved model."""
    import gankit
    from gankit.bench.images import CONFIGS
    from gankit.config import load_config
    from gankit.registry import load_encoder

    if quick:
        extra = [*extra, *QUICK[recipe], f"train.steps={QUICK_STEPS}"]
    steps = load_config(CONFIGS / recipe, extra).train.steps
    quiet = [
        "train.progress=false",
        f"train.checkpoint_every={steps}",
        f"train.sample_every={steps}",
        f"train.log_every={max(1, steps // 10)}",
        f"train.seed={seed}",
    ]
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        start = time.perf_counter()
        gankit.train(load_config(CONFIGS / recipe, [*extra, *quiet]), tmp)
        took = time.perf_counter() - start
        row = score_encoder(load_encoder(tmp), seed, quick)
    return {**row, "train_seconds": took, "steps": steps}


def _ceiling() -> float:
    from gankit.data import load_digits
    from gankit.metrics.features import digits_extractor

    test, test_y = load_digits("test")
    return float((digits_extractor().logits(test).argmax(1) == test_y).float().mean())


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Train and score every recipe over seeds (quick: 30 steps, tiny nets, 1 seed)."""
    n_seeds = seeds or (1 if quick else 3)
    measured: dict[str, Any] = {}
    for name, (recipe, extra) in RECIPES.items():
        per_seed = []
        for seed in range(n_seeds):
            per_seed.append(train_and_score(recipe, extra, seed, quick))
            took = per_seed[-1]["train_seconds"]
            print(f"{name} seed {seed} done ({took:.0f} s)", file=sys.stderr, flush=True)
        stats = {k: mean_se([r[k] for r in per_seed]) for k in KEYS}
        summary = {k: {"mean": mean, "se": se} for k, (mean, se) in stats.items()}
        measured[name] = {
            "recipe": f"configs/{recipe}",
            "overrides": extra,
            "steps": per_seed[0]["steps"],
            "per_seed": per_seed,
            **summary,
        }
    ceiling = _ceiling()
    rows = [
        [name, r["steps"], *(f"{r[k]['mean']:.3f}±{r[k]['se']:.3f}" for k in KEYS)]
        for name, r in measured.items()
    ]
    rows.append(["real test digits (ceiling / floor)", "-", "-", "-", f"{ceiling:.3f}", "0", "-"])
    head = ["row", "steps", "probe E(x)", "probe PCA", "recon agree", "recon MSE", "digits-FD"]
    table = format_table(head, rows)
    table += "\n\nreferences (digits-FD, same sample protocol): " + "; ".join(
        f"{k} {v:.3f}" for k, v in REFERENCES.items()
    )
    return {
        "protocol": {
            "data": "load_digits train (1,437) / test (360), pixels in [-1, 1]",
            "probe": "StandardScaler + LogisticRegression(max_iter=5000) on mu(x) of the train "
            "split, accuracy on the test split; PCA(n_components=latent_dim) fitted on the "
            "train pixels, same classifier",
            "reconstruction": "G(E(x)) at the code mu(x) for the 360 test digits; agreement = "
            "shipped digits classifier's argmax equals x's label",
            "samples": f"{1 if quick else 5} x 360 decoder samples vs the train split, as "
            "`gankit bench digits`",
            "seeds": n_seeds,
            "quick": quick,
        },
        "measured": measured,
        "classifier_accuracy_on_real_test": ceiling,
        "goals": GOALS,
        "references": REFERENCES,
        "table": table,
    }
