"""The networks of ProGAN (Karras et al. 2018, "Progressive Growing of GANs"), every block built
up front.

* **Equalised learning rate** (section 4.1): weights are drawn from N(0, 1) and multiplied at
  run time by He's constant c = sqrt(2 / fan_in), so Adam's step moves every layer at the same
  speed whatever its fan-in. `EqualizedConv2d` and `EqualizedLinear` hold that scale.
* **Pixel norm** (section 4.2): each pixel's feature vector divided by its RMS over channels,
  after every convolution of G.
* **Minibatch standard deviation** (section 3): `gankit.nets.layers.MinibatchStdDev` before D's
  last block.

G(z, stage, alpha) generates at resolution `resolutions[stage]`; while a new block fades in
(alpha < 1) its output is alpha × the new block's image + (1 - alpha) × the previous
resolution's image upsampled (nearest). D(x, stage, alpha) mirrors it: the new block's features
blend with the previous `from_rgb` of x average-pooled. Resolutions double from 4 px.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.nets.layers import MinibatchStdDev

LRELU = 0.2


class EqualizedConv2d(nn.Module):
    """A k×k convolution whose N(0, 1) weights are scaled by sqrt(2 / fan_in) at run time."""

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale, self.padding = math.sqrt(2.0 / (c_in * kernel * kernel)), padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A linear layer whose N(0, 1) weights are scaled by gain × sqrt(1 / fan_in) at run time."""

    def __init__(self, d_in: int, d_out: int, gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.scale = gain / math.sqrt(d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean over channels of x² + eps), per pixel (per sample for [n, d])."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU)


class GBlock(nn.Module):
    """Upsample ×2 (nearest), then two 3×3 conv - LeakyReLU - pixel norm."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, 1)
        self.conv2 = EqualizedConv2d(c_out, c_out, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return pixel_norm(_act(self.conv2(pixel_norm(_act(self.conv1(x))))))


class ProGenerator(nn.Module):
    """z -> images at `resolutions[stage]`, with the fade-in of the newest block."""

    def __init__(self, latent_dim: int, widths: list[int], channels: int) -> None:
        super().__init__()
        w0 = widths[0]
        self.latent_dim, self.w0 = latent_dim, w0
        self.dense = EqualizedLinear(latent_dim, w0 * 16, gain=math.sqrt(2.0) / 4)
        self.conv = EqualizedConv2d(w0, w0, 3, 1)
        self.blocks = nn.ModuleList(GBlock(widths[i - 1], widths[i]) for i in range(1, len(widths)))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, channels, 1) for w in widths)
        for layer in self.to_rgb:  # linear output: gain 1
            layer.scale /= math.sqrt(2.0)

    def forward(self, z: torch.Tensor, stage: int, alpha: float = 1.0) -> torch.Tensor:
        x = pixel_norm(_act(self.dense(pixel_norm(z)).view(-1, self.w0, 4, 4)))
        x = pixel_norm(_act(self.conv(x)))
        for block in self.blocks[: stage - 1] if stage > 0 else []:
            x = block(x)
        if stage == 0:
            return self.to_rgb[0](x)
        new = self.to_rgb[stage](self.blocks[stage - 1](x))
        if alpha >= 1.0:
            return new
        old = F.interpolate(self.to_rgb[stage - 1](x), scale_factor=2, mode="nearest")
        return alpha * new + (1.0 - alpha) * old


class DBlock(nn.Module):
    """Two 3×3 conv - LeakyReLU, then average-pool ×½."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(c_in, c_in, 3, 1)
        self.conv2 = EqualizedConv2d(c_in, c_out, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(_act(self.conv2(_act(self.conv1(x)))), 2)


class ProDiscriminator(nn.Module):
    """Images at `resolutions[stage]` -> one score each (a WGAN critic), fading in its newest
    block; minibatch std, a 3×3 conv, a 4×4 dense and a linear output at 4 px."""

    def __init__(self, widths: list[int], channels: int, group: int = 4) -> None:
        super().__init__()
        w0 = widths[0]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, w, 1) for w in widths)
        # blocks[i] takes resolution i+1 down to resolution i
        self.blocks = nn.ModuleList(DBlock(widths[i], widths[i - 1]) for i in range(1, len(widths)))
        self.mbstd = MinibatchStdDev(group)
        self.conv = EqualizedConv2d(w0 + 1, w0, 3, 1)
        self.dense = EqualizedLinear(w0 * 16, w0)
        self.out = EqualizedLinear(w0, 1, gain=1.0)

    def forward(self, x: torch.Tensor, stage: int, alpha: float = 1.0) -> torch.Tensor:
        h = _act(self.from_rgb[stage](x))
        if stage > 0:
            h = self.blocks[stage - 1](h)
            if alpha < 1.0:
                old = _act(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)))
                h = alpha * h + (1.0 - alpha) * old
            for block in reversed(self.blocks[: stage - 1]):
                h = block(h)
        h = _act(self.conv(self.mbstd(h)))
        return self.out(_act(self.dense(h.flatten(1)))).view(-1)


def check_architecture(arch: dict[str, Any]) -> None:
    """ConfigError unless the resolutions double from 4 and match the widths and the data."""
    res, widths = list(arch["resolutions"]), list(arch["widths"])
    expected = [4 * 2**i for i in range(len(res))]
    if not res or res != expected or res[-1] > 1024:
        raise ConfigError(
            f"model.resolutions = {res!r} must double from 4 up to at most 1024 "
            f"(e.g. [4, 8] or [4, 8, 16, 32])"
        )
    if len(widths) != len(res) or not all(isinstance(w, int) and 1 <= w <= 4096 for w in widths):
        raise ConfigError(
            f"model.widths = {widths!r} must give one channel count (1..4096) per resolution "
            f"({len(res)} for {res})"
        )


def build_networks(arch: dict[str, Any]) -> tuple[ProGenerator, ProDiscriminator]:
    """G and D with every resolution's blocks, from an architecture spec."""
    check_architecture(arch)
    c = int(arch["channels"])
    g = ProGenerator(int(arch["latent_dim"]), list(arch["widths"]), c)
    d = ProDiscriminator(list(arch["widths"]), c, int(arch["minibatch_std_group"]))
    return g, d
