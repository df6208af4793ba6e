"""BigGAN (Brock et al. 2019) at small scale as a model on the engine.

The networks (`gankit.nets.biggan`) carry the architecture: shared class embedding, hierarchical
latent, class-conditional batch norm fed by [z chunk, embedding], self-attention, spectral norm
in G and D, projection D. The step is the conditional GAN's (`ConditionalGAN`: labelled real
batches, fakes of the same labels, the `objective.*` loss — BigGAN's is hinge); BigGAN adds
**orthogonal regularisation** of G, β‖WWᵀ ⊙ (1 − I)‖²_F summed over G's weight matrices (the
shared embedding excluded), to G's loss. EMA of G is the engine's (`train.ema`), and the
**truncation trick** is the sampler's: `gen.sample(n, labels=..., truncation=t)` redraws every
latent value beyond ±t (`gankit.generator.normal_latent`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.models.conditional import ConditionalGAN
from gankit.models.conditional import build as build_conditional
from gankit.nets.biggan import orthogonal_penalty


def build(cfg) -> tuple[BigGAN, Any]:
    """BigGAN and its batch provider (registry builder of `biggan`)."""
    if not cfg.model.ortho_reg >= 0:
        raise ConfigError(f"model.ortho_reg = {cfg.model.ortho_reg!r} must be >= 0 (1e-4: BigGAN)")
    return build_conditional(cfg, BigGAN)  # type: ignore[return-value]


class OrthogonalRegularised:
    """A conditional objective whose generator loss also carries β × `orthogonal_penalty(G)`."""

    def __init__(self, inner: Any, g: nn.Module, beta: float) -> None:
        self.inner, self.g, self.beta = inner, g, beta
        shared = getattr(g, "shared", None)
        self.skip = tuple(shared.parameters()) if shared is not None else ()

    def discriminator_loss(self, *args: Any) -> tuple[torch.Tensor, dict[str, float]]:
        return self.inner.discriminator_loss(*args)

    def generator_loss(
        self, d: nn.Module, fake: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The conditional G loss plus β‖WWᵀ ⊙ (1 − I)‖²_F over G's weights."""
        loss = self.inner.generator_loss(d, fake, labels)
        if self.beta > 0:
            loss = loss + self.beta * orthogonal_penalty(self.g, self.skip).to(loss.device)
        return loss

    def after_discriminator_step(self, d: nn.Module) -> None:
        self.inner.after_discriminator_step(d)

    def state_dict(self) -> dict[str, float]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.inner.load_state_dict(state)


class BigGAN(ConditionalGAN):
    """The conditional GAN with BigGAN's networks (from the `biggan` architecture spec) and G's
    orthogonal regularisation in its objective."""

    def __init__(self, cfg, dataset) -> None:
        super().__init__(cfg, dataset)
        self.objective = OrthogonalRegularised(
            self.objective, self.networks["g"], cfg.model.ortho_reg
        )
