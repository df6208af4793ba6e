"""Discriminator rejection sampling (Azadi et al. 2019, "Discriminator Rejection Sampling").

A discriminator trained with the minimax or non-saturating loss estimates the density ratio
p_data(x) / p_G(x) as exp(logit D(x)). Keeping each generated sample with probability
exp(logit − M), where M is the largest logit seen, is rejection sampling from p_data as far as D
is right: samples in regions the generator over-covers (the bridges between modes of a
mixture, blurry digits) are dropped, and the kept ones are still independent draws.

It costs 1/acceptance generator + discriminator passes per kept sample: `estimate` predicts it
from the calibration draws before sampling starts, and `acceptance` reports it afterwards.
Wasserstein, hinge and least-squares critics do not estimate this ratio and are refused.

A packed discriminator (PacGAN, m samples per pack) scores packs, not samples. At the optimum,
for packs of i.i.d. samples, D*(x_1..x_m) = Π p_data(x_i) / (Π p_data(x_i) + Π p_G(x_i)), so
its logit is Σ_i log r(x_i) with r = p_data/p_G. A candidate x packed with m − 1 fixed context
samples c (drawn from G once per calibration) thus scores log r(x) + Σ_j log r(c_j): the ratio
up to a constant that is the same for every candidate, and rejection sampling only needs the
ratio up to a constant (M is calibrated on the same scores). So the density-ratio reading
survives, exactly for the optimal D; a trained D is not exactly additive over the pack, which
`contexts` > 1 averages out (each candidate is scored with several contexts, in a different
slot each). Packs of x with copies of itself would not do: they never occur under p_data or
p_G (for continuous data), so D was never trained on them.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gankit.errors import ConfigError, DataError

RATIO_LOSSES = ("minimax", "non-saturating")
DEFAULT_MIN_ACCEPTANCE = 1e-3
PROGRESS_AFTER_SECONDS = 2.0  # a progress bar is shown when sampling is estimated to take longer


def check_rejection_support(loss: str, pack: int = 1) -> None:
    """Raise ConfigError when a model's discriminator is not a density-ratio estimate.

    Packed discriminators are supported (see the module docstring); `pack` must be >= 1.
    """
    if loss not in RATIO_LOSSES:
        raise ConfigError(
            f"rejection sampling needs a discriminator trained with objective.loss "
            f"{' or '.join(RATIO_LOSSES)} (its logit estimates log p_data/p_G); this model used "
            f"{loss!r}"
        )
    if pack < 1:
        raise ConfigError(f"model.pack must be >= 1, got {pack}")


@dataclass(frozen=True)
class Estimate:
    """What a rejection-sampling call will cost, predicted from its calibration draws."""

    n: int  # samples wanted
    acceptance: float  # expected fraction of draws kept (at the calibrated M)
    draws_per_second: float  # generator + discriminator throughput measured while calibrating
    # with quantile 1, M grows whenever a later draw beats it, which lowers the acceptance: the
    # estimate is then a lower bound on the cost (grid-best seed 2: 5.0M estimated, 16.6M drawn)
    lower_bound: bool = False

    @property
    def draws(self) -> float:
        """Expected draws for n samples (inf when nothing would be kept)."""
        return self.n / self.acceptance if self.acceptance > 0 else math.inf

    @property
    def seconds(self) -> float:
        return self.draws / self.draws_per_second

    def describe(self) -> str:
        about = "at least" if self.lower_bound else "about"
        return (
            f"rejection sampling: calibration keeps {self.acceptance:.3g} of draws, so "
            f"{self.n} samples need {about} {_count(self.draws)} draws "
            f"(~{_duration(self.seconds)} at {_count(self.draws_per_second)} draws/s)"
        )


def _count(x: float) -> str:
    if not math.isfinite(x):
        return "infinitely many"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.0f}"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "forever"
    if seconds < 120:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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
        pack=pack,
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

    With `pack` m > 1, `discriminate` scores packs of m consecutive samples (PacGAN); each
    candidate is scored packed with m − 1 context samples of G, averaged over `contexts` fixed
    contexts (module docstring: why this is still the density ratio up to a constant).

    `min_acceptance` is the floor below which sampling is refused (DataError) rather than run
    for hours: checked against the calibration's estimate before sampling starts, and against
    the running count after 10 batches.
    """

    def __init__(
        self,
        generate: Callable[[torch.Tensor], torch.Tensor] | nn.Module,
        discriminate: Callable[[torch.Tensor], torch.Tensor] | nn.Module,
        latent_dim: int,
        calibration: int = 10_000,
        batch_size: int = 2_000,
        min_acceptance: float = DEFAULT_MIN_ACCEPTANCE,
        quantile: float = 1.0,
        pack: int = 1,
        contexts: int = 4,
    ) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ConfigError(f"rejection quantile must be in (0, 1], got {quantile!r}")
        if not 0.0 <= min_acceptance <= 1.0:
            raise ConfigError(f"min_acceptance must be in [0, 1], got {min_acceptance!r}")
        if not isinstance(pack, int) or pack < 1 or not isinstance(contexts, int) or contexts < 1:
            raise ConfigError(f"pack and contexts must be >= 1, got {pack!r} and {contexts!r}")
        self.quantile, self.pack, self.contexts = quantile, pack, contexts
        self.generate, self.discriminate = generate, discriminate
        self.latent_dim, self.batch_size = latent_dim, batch_size
        self.calibration, self.min_acceptance = calibration, min_acceptance
        self.ceiling: float | None = None  # M: the logit from which a draw is always kept
        self.context: torch.Tensor | None = None  # packed D: [contexts, pack - 1, *shape]
        self.last_estimate: Estimate | None = None
        self.drawn = self.kept = 0

    @property
    def acceptance(self) -> float:
        """Fraction of drawn samples kept so far (calibration draws not counted)."""
        return self.kept / self.drawn if self.drawn else float("nan")

    @torch.no_grad()
    def score(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """D's logit for each sample of x [n, *shape] (packed with `context` if D is packed)."""
        n = x.shape[0]
        if self.pack == 1:
            return self.discriminate(x).reshape(n).float()
        if context is None:
            raise ConfigError("a packed discriminator needs context samples to score one sample")
        total = torch.zeros(n)
        for k, ctx in enumerate(context):  # ctx: [pack - 1, *shape]
            slot = k % self.pack
            rest = ctx.unsqueeze(0).expand(n, *ctx.shape)
            packs = torch.cat([rest[:, :slot], x.unsqueeze(1), rest[:, slot:]], dim=1)
            total += self.discriminate(packs.reshape(n * self.pack, *x.shape[1:])).reshape(n)
        return total / len(context)

    @torch.no_grad()
    def _draw(
        self, n: int, gen: torch.Generator | None, context: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.latent_dim, generator=gen)
        x = self.generate(z)
        return x, self.score(x, context)

    @torch.no_grad()
    def _calibrate(
        self, gen: torch.Generator | None, n: int
    ) -> tuple[float, torch.Tensor | None, Estimate]:
        """M, the packing context (or None) and the cost estimate for n samples."""
        context = None
        if self.pack > 1:
            z = torch.randn(self.contexts * (self.pack - 1), self.latent_dim, generator=gen)
            drawn = self.generate(z)
            context = drawn.reshape(self.contexts, self.pack - 1, *drawn.shape[1:])
        start = time.perf_counter()
        logits = torch.cat(
            [
                self._draw(min(self.batch_size, self.calibration - done), gen, context)[1]
                for done in range(0, self.calibration, self.batch_size)
            ]
        ).double()
        seconds = max(time.perf_counter() - start, 1e-9)
        ceiling = float(torch.quantile(logits, self.quantile))
        acceptance = float(torch.exp(logits - ceiling).clamp(max=1.0).mean())
        rate = len(logits) / seconds
        return ceiling, context, Estimate(n, acceptance, rate, lower_bound=self.quantile == 1.0)

    def sample(
        self,
        n: int,
        seed: int | None = None,
        *,
        on_estimate: Callable[[Estimate], None] | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """n kept samples; DataError if fewer than `min_acceptance` of the draws are kept.

        With a seed the result depends on nothing else (M is calibrated afresh from that seed),
        so concurrent or repeated calls agree; without one, M is calibrated once and reused.
        `on_estimate(estimate)` is called once the cost is known, before the long part starts;
        `progress` shows a progress bar on stderr when that part is estimated to take more
        than a few seconds.
        """
        if not isinstance(n, int) or n < 1:
            raise DataError(f"n must be a positive integer, got {n!r}")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        ceiling, context = self.ceiling, self.context
        if seed is not None or ceiling is None:
            ceiling, context, estimate = self._calibrate(gen, n)
            self.last_estimate = estimate
        elif self.last_estimate is not None:
            estimate = Estimate(n, self.acceptance, self.last_estimate.draws_per_second)  # measured
        else:  # pragma: no cover - a ceiling always comes with an estimate
            estimate = Estimate(n, 1.0, 1.0)
        if on_estimate is not None:
            on_estimate(estimate)
        if estimate.acceptance < self.min_acceptance:
            raise DataError(self._refusal(estimate.describe()))  # before the long part
        bar = None
        if progress and estimate.seconds > PROGRESS_AFTER_SECONDS:
            from tqdm import tqdm

            bar = tqdm(total=n, unit="sample", desc="rejection sampling", file=sys.stderr)
        kept: list[torch.Tensor] = []
        count = drawn = 0
        try:
            while count < n:
                x, logits = self._draw(self.batch_size, gen, context)
                if self.quantile == 1.0:
                    ceiling = max(ceiling, float(logits.max()))
                accept = torch.rand(len(logits), generator=gen) < torch.exp(logits - ceiling)
                kept.append(x[accept])
                new = int(accept.sum())
                count, drawn = count + new, drawn + len(logits)
                if bar is not None:
                    bar.update(min(new, n - bar.n))
                    bar.set_postfix(acceptance=f"{count / drawn:.2g}", refresh=False)
                if drawn >= self.batch_size * 10 and count < self.min_acceptance * drawn:
                    raise DataError(
                        self._refusal(f"rejection sampling kept {count} of {drawn} draws")
                    )
        finally:
            if bar is not None:
                bar.close()
        self.ceiling, self.context = ceiling, context
        self.drawn, self.kept = self.drawn + drawn, self.kept + count
        return torch.cat(kept)[:n]

    def _refusal(self, what: str) -> str:
        return (
            f"{what}; that is below the floor min_acceptance {self.min_acceptance:.0e}: the "
            f"discriminator rejects almost everything this generator makes (probably a region "
            f"it barely covers); accept the cost with a lower floor (--min-acceptance 1e-5), "
            f"cap the ratio with a rejection quantile below 1 (e.g. 0.99), or sample without "
            f"rejection"
        )
