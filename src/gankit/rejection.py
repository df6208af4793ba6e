"""Discriminator rejection sampling (Azadi et al. 2019, "Discriminator Rejection Sampling").

A discriminator trained with the minimax or non-saturating loss estimates the density ratio
p_data(x) / p_G(x) as exp(logit D(x)). Keeping each generated sample with probability
exp(logit − M), where M is the largest logit seen, is rejection sampling from p_data as far as D
is right: samples in regions the generator over-covers (the bridges between modes of a
mixture, blurry digits) are dropped, and the kept ones are still independent draws.

It costs 1/acceptance generator + discriminator passes per kept sample; `acceptance` reports
it. Wasserstein, hinge and least-squares critics do not estimate this ratio, and a packed
discriminator scores groups of samples rather than one, so those are refused.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gankit.errors import ConfigError, DataError

RATIO_LOSSES = ("minimax", "non-saturating")


def check_rejection_support(loss: str, pack: int) -> None:
    """Raise ConfigError when a model's discriminator is not a density-ratio estimate."""
    if loss not in RATIO_LOSSES:
        raise ConfigError(
            f"rejection sampling needs a discriminator trained with objective.loss "
            f"{' or '.join(RATIO_LOSSES)} (its logit estimates log p_data/p_G); this model used "
            f"{loss!r}"
        )
    if pack > 1:
        raise ConfigError(
            f"rejection sampling needs a per-sample discriminator; this one is packed "
            f"(model.pack = {pack}) and scores {pack} samples at a time"
        )


def discriminator_sampler(
    generator: nn.Module,
    discriminator: nn.Module,
    latent_dim: int,
    *,
    loss: str,
    pack: int,
    device: torch.device | str = "cpu",
    **options: float,
) -> RejectionSampler:
    """A RejectionSampler over a trained pair on `device` (both put in eval mode), once
    `check_rejection_support` agrees that D estimates the density ratio; `options` go to it."""
    check_rejection_support(loss, pack)
    generator.eval()
    discriminator.eval()
    return RejectionSampler(
        lambda z: generator(z.to(device)).float().cpu(),
        lambda x: discriminator(x.to(device)).float().cpu(),
        latent_dim,
        **options,
    )


class RejectionSampler:
    """Draws from a generator, keeping sample x with probability min(1, exp(D(x) − M)).

    `generate(z)` and `discriminate(x)` are the two networks (logits out). With `quantile` 1.0,
    M is the largest logit among `calibration` draws and grows if a later draw exceeds it (as in
    the paper): exact rejection sampling as far as D's ratio is right, but one region G barely
    covers (a nearly missed mode, with a huge ratio) can make almost every draw rejected. A
    `quantile` below 1 sets M to that quantile of the calibration logits instead, so the top
    1 − quantile of draws are always kept: the ratio is capped, and acceptance stays usable.
    """

    def __init__(
        self,
        generate: Callable[[torch.Tensor], torch.Tensor] | nn.Module,
        discriminate: Callable[[torch.Tensor], torch.Tensor] | nn.Module,
        latent_dim: int,
        calibration: int = 10_000,
        batch_size: int = 2_000,
        min_acceptance: float = 1e-3,
        quantile: float = 1.0,
    ) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ConfigError(f"rejection quantile must be in (0, 1], got {quantile!r}")
        self.quantile = quantile
        self.generate, self.discriminate = generate, discriminate
        self.latent_dim, self.batch_size = latent_dim, batch_size
        self.calibration, self.min_acceptance = calibration, min_acceptance
        self.ceiling: float | None = None  # M: the logit from which a draw is always kept
        self.drawn = self.kept = 0

    @property
    def acceptance(self) -> float:
        """Fraction of drawn samples kept so far (calibration draws not counted)."""
        return self.kept / self.drawn if self.drawn else float("nan")

    @torch.no_grad()
    def _draw(self, n: int, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.latent_dim, generator=gen)
        x = self.generate(z)
        return x, self.discriminate(x).reshape(n).float()

    def _calibrate(self, gen: torch.Generator | None) -> float:
        logits = [
            self._draw(min(self.batch_size, self.calibration - done), gen)[1]
            for done in range(0, self.calibration, self.batch_size)
        ]
        return float(torch.quantile(torch.cat(logits).double(), self.quantile))

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n kept samples; DataError if fewer than `min_acceptance` of the draws are kept.

        With a seed the result depends on nothing else (M is calibrated afresh from that seed),
        so concurrent or repeated calls agree; without one, M is calibrated once and reused.
        """
        if not isinstance(n, int) or n < 1:
            raise DataError(f"n must be a positive integer, got {n!r}")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        ceiling = self.ceiling
        if seed is not None or ceiling is None:
            ceiling = self._calibrate(gen)
        kept: list[torch.Tensor] = []
        count = drawn = 0
        while count < n:
            x, logits = self._draw(self.batch_size, gen)
            if self.quantile == 1.0:
                ceiling = max(ceiling, float(logits.max()))
            accept = torch.rand(len(logits), generator=gen) < torch.exp(logits - ceiling)
            kept.append(x[accept])
            count, drawn = count + int(accept.sum()), drawn + len(logits)
            if drawn >= self.batch_size * 10 and count < self.min_acceptance * drawn:
                raise DataError(
                    f"rejection sampling kept {count} of {drawn} draws (below "
                    f"{self.min_acceptance:.0e}): the discriminator rejects almost everything "
                    f"this generator makes (probably a region it barely covers); use a rejection "
                    f"quantile below 1 (e.g. 0.99) to cap the ratio, or sample without rejection"
                )
        self.ceiling = ceiling
        self.drawn, self.kept = self.drawn + drawn, self.kept + count
        return torch.cat(kept)[:n]
