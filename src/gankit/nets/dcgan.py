"""DCGAN (Radford et al. 2016) generator and discriminator for square images of 8–64 pixels."""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nets.layers import MinibatchStdDev

SIZES = (8, 16, 32, 64)


def _stages(image_size: int) -> int:
    if image_size not in SIZES:
        raise ConfigError(f"DCGAN image size must be one of {SIZES}, got {image_size}")
    return int(math.log2(image_size // 4))


class DCGANGenerator(nn.Module):
    """z → 4×4 map → (transposed conv, BN, ReLU) up to the image size → 3×3 conv → tanh."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 64) -> None:
        super().__init__()
        stages = _stages(image_size)
        self.latent_dim = latent_dim
        top = width * 2**stages
        self.project = nn.Sequential(
            nn.Linear(latent_dim, top * 16, bias=False), nn.BatchNorm1d(top * 16), nn.ReLU()
        )
        self.top = top
        blocks: list[nn.Module] = []
        for i in range(stages):
            c_in, c_out = top // 2**i, top // 2 ** (i + 1)
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        blocks += [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(z.shape[0], self.top, 4, 4))


class DCGANDiscriminator(nn.Module):
    """Image → 3×3 conv → strided convs down to 4×4 (LeakyReLU) → one logit."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 64,
        batch_norm: bool = False,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        stages = _stages(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        for i in range(stages):
            c_in, c_out = width * 2**i, width * 2 ** (i + 1)
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers)
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        top = width * 2**stages + int(minibatch_std)
        self.head = nn.Linear(top * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        return self.head(h.flatten(1)).squeeze(1)
