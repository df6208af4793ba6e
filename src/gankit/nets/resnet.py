"""SNGAN-style ResNet generator and discriminator for 32×32 images (Miyato et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError


def _check_size(image_size: int) -> None:
    if image_size != 32:
        raise ConfigError(f"the resnet family supports image_size 32, got {image_size}")


class GenBlock(nn.Module):
    """BN-ReLU-upsample-conv-BN-ReLU-conv with a 1×1 upsampled shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DiscBlock(nn.Module):
    """ReLU-conv-ReLU-conv (-avgpool) with a 1×1 shortcut; `first` skips the leading ReLU."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        self.first, self.downsample = first, downsample
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or downsample) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        skip = x
        if self.shortcut is not None:
            skip = self.shortcut(F.avg_pool2d(x, 2) if self.first else x)
            if self.downsample and not self.first:
                skip = F.avg_pool2d(skip, 2)
        return h + skip


class ResNetGenerator(nn.Module):
    """z → 4×4×width → three up-blocks → BN-ReLU-conv → tanh, 32×32 output."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 256) -> None:
        super().__init__()
        _check_size(image_size)
        self.latent_dim, self.width = latent_dim, width
        self.project = nn.Linear(latent_dim, width * 16)
        self.blocks = nn.Sequential(*(GenBlock(width, width) for _ in range(3)))
        self.out = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.project(z).view(z.shape[0], self.width, 4, 4)))


class ResNetDiscriminator(nn.Module):
    """Four residual blocks (two downsampling), ReLU, global sum pooling, linear → one logit."""

    def __init__(self, channels: int, image_size: int, width: int = 128) -> None:
        super().__init__()
        _check_size(image_size)
        self.blocks = nn.Sequential(
            DiscBlock(channels, width, downsample=True, first=True),
            DiscBlock(width, width, downsample=True),
            DiscBlock(width, width, downsample=False),
            DiscBlock(width, width, downsample=False),
        )
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.head(h).squeeze(1)
