"""Fully connected networks: Goodfellow et al. 2014's MLP/maxout pair and a plain MLP for toys."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gankit.nets.layers import Maxout, MinibatchStdDev, activation, output_activation


def _hidden_stack(
    in_dim: int, widths: Sequence[int], act: str, batch_norm: bool, dropout: float
) -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(nn.Linear(in_dim, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    return layers, in_dim


def mlp(
    n_in: int, widths: Sequence[int], n_out: int, act: str = "relu", dropout: float = 0.0
) -> nn.Sequential:
    """Linear layers of `widths` with `act` (and dropout) between them, then Linear(…, n_out)."""
    layers, width = _hidden_stack(n_in, widths, act, False, dropout)
    return nn.Sequential(*layers, nn.Linear(width, n_out))


class MLPGenerator(nn.Module):
    """z → hidden layers → a tensor of `out_shape` (e.g. [2] for toys, [1, 8, 8] for digits)."""

    def __init__(
        self,
        latent_dim: int,
        out_shape: Sequence[int],
        hidden: Sequence[int] = (128, 128),
        act: str = "relu",
        batch_norm: bool = False,
        output: str = "none",
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.out_shape = tuple(out_shape)
        layers, width = _hidden_stack(latent_dim, hidden, act, batch_norm, 0.0)
        layers += [nn.Linear(width, math.prod(self.out_shape)), output_activation(output)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """x (any shape, flattened) → hidden layers → one score (a logit)."""

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden: Sequence[int] = (128, 128),
        act: str = "leaky_relu",
        dropout: float = 0.0,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        in_dim = math.prod(in_shape)
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        layers, width = _hidden_stack(in_dim + int(minibatch_std), hidden, act, False, dropout)
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if self.minibatch_std is not None:
            x = self.minibatch_std(x)
        return self.net(x).squeeze(1)


class MaxoutDiscriminator(nn.Module):
    """Goodfellow et al. 2014's discriminator: maxout layers with dropout, one logit out."""

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden: Sequence[int] = (240, 240),
        pieces: int = 5,
        dropout: float = 0.5,
        input_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
        in_dim = math.prod(in_shape)
        for width in hidden:
            layers += [Maxout(in_dim, width, pieces), nn.Dropout(dropout)]
            in_dim = width
        layers.append(nn.Linear(in_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1)).squeeze(1)
