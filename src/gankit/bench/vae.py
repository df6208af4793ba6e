"""`gankit bench vae`: the digits VAE's held-out log-likelihood against PPCA and factor analysis.

Protocol. Data: scikit-learn's 8×8 digits, the fixed train (1,437) / test (360) split of
`gankit.data.load_digits`, pixels x_int in {0..16} scaled to x = x_int / 8 - 1 in [-1, 1] (the
training range of every gankit digits model). Densities are compared on **dequantised** data,
x + u / 8 with u ~ U[0, 1)^64 (one grey level of uniform noise), so every model is a density on
the same continuous space and the usual bound applies to the discrete digits:
log P(x_int) >= E_u[log p(x + u / 8)] - 64 log 8.

* VAE: `configs/digits-vae.yaml` (latent size L, Gaussian decoder with a learned per-pixel std,
  fresh dequantisation noise at every step), seed s. Its score is the IWAE bound (Burda et al.
  2016) with k importance samples, a lower bound on its log-likelihood.
* PPCA and FA: scikit-learn's `PCA(n_components=L).score` and `FactorAnalysis(n_components=L)
  .score` (exact log-likelihoods), fitted on the train split dequantised `COPIES` times over
  (fresh noise per copy, seed s).
* Every model is scored on the same dequantised test split (noise from seed 10,000 + s).

Reported: the mean held-out log-density in nats per image (higher is better) and the matching
bits per dimension of the discrete digits, bpd = -(LL - 64 ln 8) / (64 ln 2) (lower is better;
a uniform distribution over the 17 grey levels is log2 17 = 4.09 bpd).
The VAE's samples (decoder means) are also scored like `gankit bench digits` (digits-FD etc.,
5 × 360 samples against the train split) to stand beside the GAN recipes.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit.bench.common import format_table, mean_se

RECIPE = "digits-vae.yaml"
STEP = 0.125  # one grey level of the [-1, 1] digits
COPIES = 10  # dequantised copies of the train split that PPCA / FA are fitted on
K = 1000  # importance samples of the IWAE bound
QUICK = ["train.steps=200", "model.widths=[32]"]


def dequantize(x: torch.Tensor, seed: int) -> torch.Tensor:
    """x + u / 8, u ~ U[0, 1) per pixel (seeded)."""
    return x + STEP * torch.rand(x.shape, generator=torch.Generator().manual_seed(seed))


def bits_per_dim(nats: float, dims: int) -> float:
    """Bits per dimension of the discrete digits from a log-density of dequantised x."""
    return -(nats + dims * math.log(STEP)) / (dims * math.log(2))


def linear_scores(
    train: torch.Tensor, test: torch.Tensor, latent: int, seed: int
) -> dict[str, float]:
    """PPCA and FA held-out mean log-likelihoods (nats per image) on dequantised data."""
    from sklearn.decomposition import PCA, FactorAnalysis

    fit = torch.cat([dequantize(train, seed * 100 + c) for c in range(COPIES)])
    x_fit = fit.reshape(len(fit), -1).double().numpy()
    x_test = test.reshape(len(test), -1).double().numpy()
    return {
        "ppca": float(PCA(n_components=latent, random_state=seed).fit(x_fit).score(x_test)),
        "fa": float(
            FactorAnalysis(n_components=latent, random_state=seed).fit(x_fit).score(x_test)
        ),
    }


def train_vae(seed: int, extra: list[str], out: Path):
    """The recipe trained for one seed; returns (model, seconds)."""
    from gankit.bench.images import CONFIGS
    from gankit.config import load_config
    from gankit.engine.runs import build_trainer

    recipe = CONFIGS / RECIPE
    overrides = [f"train.seed={seed}", "train.progress=false", *extra]
    cfg = load_config(recipe, overrides)
    trainer = build_trainer(cfg, out)
    start = time.perf_counter()
    trainer.fit()
    return trainer.model, time.perf_counter() - start, cfg


def run(quick: bool = False, seeds: int | None = None, out: str | None = None) -> dict[str, Any]:
    """Train the recipe per seed; score it, PPCA and FA on the same dequantised test split."""
    import tempfile

    from gankit.bench.digits import score, score_chunks
    from gankit.data import load_digits
    from gankit.models.vae import iwae_bound

    n_seeds = seeds or (1 if quick else 3)
    k = 50 if quick else K
    extra = QUICK if quick else []
    train, _ = load_digits("train")
    held, _ = load_digits("test")
    dims = held[0].numel()
    per_seed: list[dict[str, float]] = []
    latent = None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(n_seeds):
            model, seconds, cfg = train_vae(seed, extra, Path(out or tmp) / f"vae-{seed}")
            latent = cfg.model.latent_dim
            test = dequantize(held, 10_000 + seed)
            row = {f"{key}_nats": v for key, v in linear_scores(train, test, latent, seed).items()}
            row["vae_iwae_nats"] = float(iwae_bound(model, test, k, seed=seed).mean())
            row["vae_elbo_nats"] = float(iwae_bound(model, test, 1, seed=seed).mean())
            row["train_seconds"] = seconds
            n_fake = len(held) * (1 if quick else 5)
            fake = model.sample(n_fake, seed=seed).clamp(-1, 1)
            row.update({f"sample_{k_}": v for k_, v in score_chunks(fake, train, held).items()})
            per_seed.append(row)
            print(f"vae seed {seed} done ({seconds:.0f} s)", file=sys.stderr, flush=True)
    floor = score(held, train, held)
    summary = {key: mean_se([r[key] for r in per_seed]) for key in per_seed[0]}
    rows = []
    for name, key in (
        (f"VAE, IWAE bound k={k}", "vae_iwae_nats"),
        ("VAE, ELBO (k=1)", "vae_elbo_nats"),
        ("probabilistic PCA (exact)", "ppca_nats"),
        ("factor analysis (exact)", "fa_nats"),
    ):
        mean, se = summary[key]
        rows.append([name, f"{mean:.1f} ± {se:.1f}", f"{bits_per_dim(mean, dims):.3f}"])
    table = format_table([f"model (latent {latent})", "held-out nats/image", "bits/dim"], rows)
    fd = summary["sample_fd"]
    table += (
        f"\n\nVAE samples (decoder means): digits-FD {fd[0]:.3f} ± {fd[1]:.3f} "
        f"(held-out floor {floor['fd']:.3f}); precision {summary['sample_precision'][0]:.3f}, "
        f"recall {summary['sample_recall'][0]:.3f}, copy fraction "
        f"{summary['sample_copy_fraction'][0]:.3f}"
    )
    return {
        "protocol": {
            "data": "load_digits train (1,437) / test (360), x = x_int / 8 - 1",
            "dequantization": "x + u / 8, u ~ U[0,1)^64; test noise seed 10000 + seed",
            "bits_per_dim": "-(LL - 64 ln 8) / (64 ln 2): a bound for the discrete digits",
            "recipe": f"configs/{RECIPE}",
            "overrides": extra,
            "latent_dim": latent,
            "iwae_k": k,
            "linear_baselines": f"sklearn PCA / FactorAnalysis(n_components={latent}) fitted "
            f"on {COPIES} dequantised copies of the train split",
            "samples": "decoder means of z ~ N(0, I), clamped to [-1, 1], scored as in "
            "`gankit bench digits` (5 x 360 against the train split)",
            "seeds": n_seeds,
        },
        "per_seed": per_seed,
        "summary": {key: {"mean": m, "se": s} for key, (m, s) in summary.items()},
        "heldout_floor": floor,
        "references": {
            "gankit bench digits (docs/benchmarks/digits.json)": {
                "plain DCGAN digits-FD": 1.045,
                "best recipe (+ rejection) digits-FD": 1.066,
                "held-out floor digits-FD": 0.250,
            }
        },
        "table": table,
    }
