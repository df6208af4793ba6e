"""Small building blocks shared by the network families."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gankit.errors import ConfigError

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
    "elu": lambda: nn.ELU(),
    "silu": lambda: nn.SiLU(),
}
OUTPUTS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}


def activation(name: str) -> nn.Module:
    """An activation module by name."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def output_activation(name: str) -> nn.Module:
    """The generator's output squashing by name."""
    if name not in OUTPUTS:
        raise ConfigError(f"unknown output activation {name!r}; choose one of {sorted(OUTPUTS)}")
    return OUTPUTS[name]()


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every conv and linear layer of `module`."""
    for child in list(module.modules()):
        if isinstance(child, nn.Conv2d | nn.Linear | nn.ConvTranspose2d) and not hasattr(
            child, "parametrizations"
        ):
            spectral_norm(child)
    return module


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over `pieces` linear maps."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        return out.view(*out.shape[:-1], -1, self.pieces).amax(dim=-1)


class MinibatchStdDev(nn.Module):
    """Appends the mean over features of the per-feature std across groups of the batch (ProGAN).

    It lets the discriminator see the variety of a batch, which penalises collapsed generators.
    Works on [N, F] and [N, C, H, W] inputs; adds one feature / channel.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        group = min(self.group_size, n)
        while n % group:
            group -= 1
        grouped = x.reshape(group, -1, *x.shape[1:])
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt()
        stat = std.reshape(std.shape[0], -1).mean(dim=1)
        stat = stat.repeat(group)
        shape = (n, 1, *x.shape[2:])
        return torch.cat([x, stat.view(n, *([1] * (x.dim() - 1))).expand(shape)], dim=1)


def init_weights(module: nn.Module, scheme: str) -> None:
    """Initialise conv/linear weights: 'dcgan' N(0, 0.02), 'orthogonal', or 'default'."""
    if scheme == "default":
        return
    for child in module.modules():
        if isinstance(child, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if scheme == "dcgan":
                nn.init.normal_(child.weight, 0.0, 0.02)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(child.weight, gain=1.4)
            else:
                raise ConfigError(
                    f"unknown init {scheme!r}; choose 'default', 'dcgan' or 'orthogonal'"
                )
            if child.bias is not None:
                nn.init.zeros_(child.bias)
