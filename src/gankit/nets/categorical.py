"""A disconnected latent space: the first K noise dimensions become a uniform categorical code.

A continuous generator of one connected Gaussian cannot put all its mass on disconnected modes:
some always falls between them (Khayatkhoei et al. 2018, "Disconnected Manifold Learning for
GANs"; mixtures of generators, Hoang et al. 2018, MGAN). `CategoricalLatent(inner, K)` replaces
z[:, :K] by one_hot(argmax z[:, :K]) — a uniform draw of K categories, so the trainer's Gaussian
noise needs no change — and feeds [code, z[:, K:]] to `inner`. Each category can then map to its
own mode with nothing in between; the generator's parameters still get ordinary gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError


class CategoricalLatent(nn.Module):
    """Wraps a generator: z[:, :K] → one-hot of its argmax, the rest of z passed through."""

    def __init__(self, inner: nn.Module, categories: int, latent_dim: int) -> None:
        super().__init__()
        if not 2 <= categories <= latent_dim:
            raise ConfigError(
                f"model.latent_categories = {categories} must be in 2..model.latent_dim "
                f"({latent_dim})"
            )
        self.inner = inner
        self.categories = categories
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = self.categories
        code = F.one_hot(z[:, :k].argmax(1), k).to(z.dtype)
        return self.inner(torch.cat([code, z[:, k:]], dim=1))
