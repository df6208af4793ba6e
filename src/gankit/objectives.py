"""GAN losses and penalties: small pure functions composed by `Objective`.

The training loop only calls `Objective.discriminator_loss`, `generator_loss` and
`after_discriminator_step`; adding a loss, a penalty or an augmentation never edits the loop.
All discriminators output raw scores (logits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError

Scores = torch.Tensor


# --- losses: (real scores, fake scores) -> D loss; fake scores -> G loss ----------------------
def minimax_d(real: Scores, fake: Scores) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014, eq. 1)."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g(fake: Scores) -> torch.Tensor:
    """E[log(1 - D(G(z)))], the saturating generator loss of the minimax game."""
    return -F.softplus(fake).mean()


def non_saturating_g(fake: Scores) -> torch.Tensor:
    """-E[log D(G(z))], the non-saturating generator loss (same paper, section 3)."""
    return F.softplus(-fake).mean()


def wasserstein_d(real: Scores, fake: Scores) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)] (Arjovsky et al. 2017); needs a Lipschitz constraint."""
    return fake.mean() - real.mean()


def wasserstein_g(fake: Scores) -> torch.Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def least_squares_d(real: Scores, fake: Scores) -> torch.Tensor:
    """½E[(D(x) - 1)²] + ½E[D(G(z))²] (Mao et al. 2017, a=0, b=c=1)."""
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()


def least_squares_g(fake: Scores) -> torch.Tensor:
    """½E[(D(G(z)) - 1)²]."""
    return 0.5 * ((fake - 1) ** 2).mean()


def hinge_d(real: Scores, fake: Scores) -> torch.Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def auxiliary_class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-E[log P(C = c | X)], the class log-likelihood term L_C of ACGAN (Odena et al. 2017) as a
    loss: mean cross-entropy of class logits [n, K] against labels [n]. D minimises it on real
    and generated samples, G on generated ones."""
    return F.cross_entropy(logits.float(), labels)


@dataclass(frozen=True)
class Loss:
    """A pair of discriminator and generator losses."""

    d: Callable[[Scores, Scores], torch.Tensor]
    g: Callable[[Scores], torch.Tensor]
    sign_separates: bool = True  # does sign(score) mean real/fake? (not for Wasserstein critics)


LOSSES: dict[str, Loss] = {
    "minimax": Loss(minimax_d, minimax_g),
    "non-saturating": Loss(minimax_d, non_saturating_g),
    "wasserstein": Loss(wasserstein_d, wasserstein_g, sign_separates=False),
    "least-squares": Loss(least_squares_d, least_squares_g),
    "hinge": Loss(hinge_d, wasserstein_g),
}


# --- penalties ---------------------------------------------------------------------------------
class Penalty(Protocol):
    """Adds a term to the discriminator loss; may constrain D after its optimizer step."""

    def __call__(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor: ...


def _grad_norm_sq(d: nn.Module, x: torch.Tensor, group: int = 1) -> torch.Tensor:
    """‖∇ₓ D‖² per sample, or per run of `group` consecutive samples (a PacGAN pack)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return grad.reshape(grad.shape[0] // group, -1).pow(2).sum(dim=1)


@dataclass
class GradientPenalty:
    """WGAN-GP (Gulrajani et al. 2017): λ·E[(‖∇D(x̂)‖ - 1)²], x̂ on real–fake segments.

    One interpolation coefficient per sample (broadcast over its pixels), as in the paper; with
    `group` > 1, one per pack of `group` consecutive samples and the norm taken over the pack
    (the critic of a packed D is a function of the whole pack, as in CTGAN).
    """

    weight: float = 10.0
    group: int = 1

    def __call__(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        n = real.shape[0] // self.group
        alpha = torch.rand(n, 1, *([1] * (real.dim() - 1)), device=real.device)
        alpha = alpha.expand(n, self.group, *([1] * (real.dim() - 1))).reshape(
            real.shape[0], *([1] * (real.dim() - 1))
        )
        mixed = alpha * real.detach() + (1 - alpha) * fake.detach()
        norm = (_grad_norm_sq(d, mixed, self.group) + 1e-12).sqrt()
        return self.weight * ((norm - 1) ** 2).mean()


@dataclass
class R1Penalty:
    """R1 (Mescheder et al. 2018): γ/2·E[‖∇D(x)‖²] on real data."""

    gamma: float = 10.0

    def __call__(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.gamma * _grad_norm_sq(d, real).mean()


@dataclass
class WeightClip:
    """WGAN weight clipping (Arjovsky et al. 2017): every D parameter kept in [-c, c]."""

    bound: float = 0.01

    def __call__(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return real.new_zeros(())

    def after_step(self, d: nn.Module) -> None:
        with torch.no_grad():
            for param in d.parameters():
                param.clamp_(-self.bound, self.bound)


Augment = Callable[[torch.Tensor], torch.Tensor]


class Objective:
    """A loss, penalties and an optional augmentation applied to real and fake alike."""

    def __init__(
        self, loss: Loss, penalties: Sequence[Penalty] = (), augment: Augment | None = None
    ) -> None:
        self.loss = loss
        self.penalties = list(penalties)
        self.augment = augment

    def _view(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def discriminator_loss(
        self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The D loss on one batch, with statistics for logging and the watchdog."""
        real_v, fake_v = self._view(real), self._view(fake.detach())
        real_scores, fake_scores = d(real_v), d(fake_v)
        observe = getattr(self.augment, "observe", None)
        if observe is not None:  # adaptive augmentation (ADA) reads D's verdict on real data
            observe(real_scores)
        loss = self.loss.d(real_scores, fake_scores)
        for penalty in self.penalties:
            loss = loss + penalty(d, real_v, fake_v)
        stats = {
            "d_real": float(real_scores.detach().float().mean()),
            "d_fake": float(fake_scores.detach().float().mean()),
        }
        if self.loss.sign_separates:
            perfect = bool((real_scores > 0).all() and (fake_scores < 0).all())
            stats["d_perfect"] = float(perfect)
        return loss, stats

    def generator_loss(self, d: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The G loss on generated samples (`real` serves objectives that need it)."""
        return self.loss.g(d(self._view(fake)))

    def state_dict(self) -> dict[str, float]:
        """State that must survive a resume (e.g. ADA's adaptive probability)."""
        stateful = getattr(self.augment, "state_dict", None)
        return dict(stateful()) if stateful is not None else {}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore what `state_dict` returned."""
        if state and self.augment is not None and hasattr(self.augment, "load_state_dict"):
            self.augment.load_state_dict(state)

    def after_discriminator_step(self, d: nn.Module) -> None:
        """Constraints applied after D's optimizer step (e.g. weight clipping)."""
        for penalty in self.penalties:
            hook = getattr(penalty, "after_step", None)
            if hook is not None:
                hook(d)


def build_objective(cfg) -> Objective:
    """The objective described by an `ObjectiveConfig`."""
    if cfg.loss not in LOSSES:
        raise ConfigError(f"unknown objective.loss {cfg.loss!r}; choose one of {sorted(LOSSES)}")
    penalties: list[Penalty] = []
    if cfg.gradient_penalty > 0:
        penalties.append(GradientPenalty(cfg.gradient_penalty))
    if cfg.r1 > 0:
        penalties.append(R1Penalty(cfg.r1))
    if cfg.weight_clip > 0:
        penalties.append(WeightClip(cfg.weight_clip))
    augment = None
    if getattr(cfg, "augment", ""):
        from gankit.augment import DiffAugment

        augment = DiffAugment(cfg.augment, cfg.augment_p, cfg.ada_target, cfg.ada_speed)
    if getattr(cfg, "unroll_steps", 0) > 0:
        from gankit.unrolled import UnrolledObjective

        return UnrolledObjective(
            LOSSES[cfg.loss],
            penalties,
            augment,
            steps=cfg.unroll_steps,
            lr=cfg.unroll_lr,
            backprop=cfg.unroll_backprop,
        )
    return Objective(LOSSES[cfg.loss], penalties, augment)
