"""Differentially private training of the image and toy GANs (`train.dp_epsilon`): DP-SGD on D.

Only the discriminator reads real data; the generator learns from D's output alone, so
making D's updates differentially private (Abadi et al. 2016: Poisson-sampled batches, each
sample's gradient clipped to `max_grad_norm`, Gaussian noise) makes G private too
(post-processing). As in `TabularGAN(dp=...)` (`gankit.tabular.dp`, whose calibration and
accountant this module calls), a per-sample unit is one real image paired with the fake
generated for it, their gradients clipped together, so removing an image removes exactly one
clipped term; Opacus gives the per-sample gradients (`GradSampleModule`).

D must treat samples independently for that: no batch norm, no minibatch-std, no packing, no
spectral norm (Opacus refuses its power-iteration buffer), and the non-saturating loss without
gradient penalties or R1 (a gradient of a gradient is not a per-sample quantity Opacus can
clip). The pixel range is public by construction: images are
scaled linearly from their format's fixed range ([0, 16] digits, [0, 255] 8-bit) to [-1, 1],
no statistic of the data is used. The image shape and the dataset size (it sets the sample
rate) are public too.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gankit.engine.model import Batch, Batches, update
from gankit.errors import ConfigError, require
from gankit.models.dpsgd import per_sample_module, private_update
from gankit.models.gan import GAN
from gankit.models.tabular.ctgan import _rng_restore, _rng_state
from gankit.tabular.dp import DPSettings, calibrate, epsilon_spent

DISCRIMINATOR = (
    "per-sample (real, fake) pairs clipped together, non-saturating loss, no batch norm, "
    "no minibatch-std, no packing, no spectral norm, no gradient penalty or R1"
)


class PoissonImages:
    """Batch provider of DP-SGD: every sample joins a batch independently with `sample_rate`
    (Poisson sampling, what the accountant's amplification assumes); its RNG is checkpointed
    so a resumed run draws the same batches."""

    def __init__(self, x: torch.Tensor, sample_rate: float, seed: int) -> None:
        self.x, self.sample_rate = x, sample_rate
        self.rng = np.random.default_rng(seed)

    def batch(self, index: int) -> Batch:
        rows = np.flatnonzero(self.rng.random(len(self.x)) < self.sample_rate)
        return Batch(self.x[torch.from_numpy(rows)])

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = _rng_restore(state["rng"])


def settings(cfg) -> DPSettings:
    """The target (ε, δ, C) of `train.dp_*`, validated as TabularGAN's `dp` option is."""
    t = cfg.train
    try:
        out = DPSettings.parse(
            {"epsilon": t.dp_epsilon, "delta": t.dp_delta, "max_grad_norm": t.dp_max_grad_norm}
        )
    except ConfigError as exc:
        raise ConfigError(f"train.dp_*: {exc}") from exc
    assert out is not None
    return out


def check_private(cfg, n: int) -> None:
    """A ConfigError naming the key to change when D or the objective is not per-sample."""
    m, o, t = cfg.model, cfg.objective, cfg.train
    fixes = [
        (getattr(m, "d_batch_norm", False), "model.d_batch_norm=false", "batch norm in D"),
        (getattr(m, "minibatch_std", False), "model.minibatch_std=false", "minibatch-std in D"),
        (getattr(m, "pack", 1) > 1, "model.pack=1", "packing (PacGAN)"),
        (getattr(m, "spectral_norm", False), "model.spectral_norm=false", "spectral norm"),
        (o.gradient_penalty > 0, "objective.gradient_penalty=0", "a gradient penalty"),
        (o.r1 > 0, "objective.r1=0", "the R1 penalty"),
        (o.loss != "non-saturating", "objective.loss=non-saturating", f"the {o.loss} loss"),
        (o.unroll_steps > 0, "objective.unroll_steps=0", "unrolled D steps in G's loss"),
        (bool(o.augment.strip()), "objective.augment=''", "augmentation"),
        (int(os.environ.get("WORLD_SIZE", "1")) > 1, "one process", "torchrun ranks"),
    ]
    for bad, fix, what in fixes:
        if bad:
            raise ConfigError(
                f"train.dp_epsilon: DP-SGD clips each sample's gradient, which {what} does not "
                f"allow; set {fix} (or unset train.dp_epsilon)"
            )
    if t.dp_delta >= 1.0 / n:
        raise ConfigError(
            f"train.dp_delta = {t.dp_delta} is not below 1/n = {1 / n:.3g} (n = {n} samples); "
            "a delta that large allows publishing a sample outright. Use e.g. 1e-5"
        )
    if t.batch_size >= n:
        raise ConfigError(
            f"train.batch_size = {t.batch_size} must be below the dataset size {n}: it is the "
            "expected Poisson batch (sample rate batch_size / n)"
        )


def build(cfg, dataset) -> tuple[DPGAN, PoissonImages]:
    """The DP GAN and its Poisson provider: noise calibrated by Opacus for the target ε over
    steps x d_steps D updates at sample rate batch_size / n."""
    n = len(dataset.x)
    target = settings(cfg)
    check_private(cfg, n)
    sample_rate = cfg.train.batch_size / n
    sigma, _, _ = calibrate(target, sample_rate, cfg.train.steps * cfg.train.d_steps, False)
    model = DPGAN(cfg, dataset, target, sigma=sigma, sample_rate=sample_rate)
    return model, PoissonImages(dataset.x, sample_rate, cfg.train.seed)


class DPGAN(GAN):
    """`GAN` whose discriminator update is DP-SGD; G's update reads D only.

    `sigma` (noise multiplier) and `sample_rate` come from `build`; `spent` lists the
    (noise multiplier, sample rate, D steps) phases run so far, checkpointed, so a resumed run
    with more steps (hence other noise) reports the composed ε."""

    def __init__(
        self, cfg, dataset, target: DPSettings, *, sigma: float, sample_rate: float
    ) -> None:
        super().__init__(cfg, dataset)
        batch_norm = [type(m).__name__ for m in self.networks["d"].modules() if _is_norm(m)]
        if batch_norm:
            raise ConfigError(
                f"train.dp_epsilon: model.family = {cfg.model.family!r} has {batch_norm[0]} in "
                "D, which mixes samples; choose a family without batch norm in D"
            )
        self.target, self.sigma, self.sample_rate = target, sigma, sample_rate
        self.clip = target.max_grad_norm
        self.expected_batch = sample_rate * len(dataset.x)
        self.dp_noise = torch.Generator().manual_seed(cfg.train.seed + 3)
        self.spent: list[list[float]] = []

    def attach(self, device, wrap, autocast) -> None:
        super().attach(device, wrap, autocast)
        self.grad_sample = per_sample_module(self.networks["d"], "train.dp_epsilon (D)")

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """k DP-SGD updates of D, then G's non-saturating update through D (hooks off)."""
        g, d = self.live["g"], self.live["d"]
        for _ in range(self.cfg.train.d_steps):
            self.private_d_step(batches.next().x, g, d, optimizers["d"])
            self.objective.after_discriminator_step(self.networks["d"])
        self._count(self.cfg.train.d_steps)
        self.grad_sample.disable_hooks()  # G's backward through d needs no per-sample gradients
        try:
            loss_g = F.softplus(-d(g(self.latent(batches)))).mean()
            update(
                loss_g, optimizers["g"], self.networks["g"].parameters(), self.cfg.train.grad_clip
            )
        finally:
            self.grad_sample.enable_hooks()
        # no D loss on real samples in the logs: metrics.jsonl would publish it outside DP
        return {"loss_g": float(loss_g.detach())}

    def private_d_step(self, real: torch.Tensor, g, d, optimizer) -> None:
        """One DP-SGD step of D on (real, its fake) pairs (`gankit.models.dpsgd`)."""
        m = len(real)

        def per_pair_loss() -> torch.Tensor:
            with torch.no_grad():
                z = torch.randn(m, self.latent_dim, generator=self.noise)
                fake = g(z.to(self.device))
            scores = d(torch.cat([fake, real], 0)).reshape(2 * m)
            return F.softplus(scores[:m]) + F.softplus(-scores[m:])

        private_update(
            self.networks["d"],
            per_pair_loss if m else None,
            optimizer,
            clip=self.clip,
            sigma=self.sigma,
            expected_batch=self.expected_batch,
            noise=lambda p: torch.randn(p.shape, generator=self.dp_noise).to(p.device),
        )

    def _count(self, steps: int) -> None:
        if self.spent and self.spent[-1][:2] == [self.sigma, self.sample_rate]:
            self.spent[-1][2] += steps
        else:
            self.spent.append([self.sigma, self.sample_rate, steps])

    def epsilon(self) -> float:
        """ε of the D steps run so far (Opacus's RDP accountant; 0 before the first)."""
        if not self.spent:
            return 0.0
        *earlier, (sigma, rate, steps) = [tuple(p) for p in self.spent]
        with warnings.catch_warnings():  # Opacus: "Optimal order is the largest alpha"
            warnings.filterwarnings("ignore", "Optimal order is the largest alpha", UserWarning)
            return epsilon_spent(sigma, rate, int(steps), self.target.delta, earlier=earlier)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "dp_noise": self.dp_noise.get_state(), "spent": self.spent}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.dp_noise.set_state(state["dp_noise"])
        self.spent = [list(p) for p in state["spent"]]

    @torch.no_grad()
    def preview(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generated samples only: real points drawn beside them would leave DP."""
        return super().preview()[0], None

    def spec(self) -> dict[str, Any]:
        """GAN's model.json with the privacy record under "dp" (TabularGAN's shape)."""
        opacus = require("opacus", "privacy")
        image = self.dataset.is_image
        return {
            **super().spec(),
            "dp": {
                "epsilon": self.epsilon(),
                "delta": self.target.delta,
                "target_epsilon": self.target.epsilon,
                "accountant": f"opacus {opacus.__version__} RDP",
                "noise_multiplier": self.sigma,
                "sample_rate": self.sample_rate,
                "steps": int(sum(p[2] for p in self.spent)),
                "phases": self.spent,
                "max_grad_norm": self.clip,
                "histogram_noise_multiplier": None,
                "critic": DISCRIMINATOR,
                "public": [
                    "pixel range [-1, 1] (fixed scaling of the format's range, no data used)"
                    if image
                    else "coordinates used raw (no statistic of the data)",
                    "sample shape",
                    "dataset size (sets the sample rate)",
                ],
                "declared": [],
                "private": [
                    "discriminator weights (DP-SGD)",
                    "generator weights (post-processing of the discriminator)",
                ],
                "settings": self.target.to_dict(),
            },
        }


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)
