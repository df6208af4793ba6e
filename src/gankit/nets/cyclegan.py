"""The networks of CycleGAN (Zhu et al. 2017), sized for small images (8 to 32 px and up).

Generator (the paper's ResNet generator, appendix 7.2): a k×k convolution, two stride-2
convolutions (doubling the channels), `blocks` residual blocks at the bottleneck, two
transposed convolutions back up, a k×k convolution to the image and tanh; k is 7 from 32 px
(as in the paper) and 3 below. Discriminator: `layers` stride-2 4×4 convolutions (LeakyReLU
0.2, no norm on the first), then a 3×3 convolution to one channel. As a PatchGAN its output is
that grid of logits, each judging one overlapping patch; otherwise the grid is averaged to one
logit per image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit.errors import ConfigError

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Instance norm (the paper's, with affine parameters), batch norm, or none."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"model.norm = {kind!r} is not allowed; choose one of {', '.join(NORMS)}")


class ResidualBlock(nn.Module):
    """x + conv-norm-ReLU-conv-norm(x), 3×3 convolutions."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            norm_layer(norm, channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def edge_kernel(size: int) -> int:
    """The first and last convolutions' kernel: 7 (the paper's) from 32 px, 3 below."""
    return 7 if size >= 32 else 3


class GlobalMix(nn.Module):
    """x + a fully connected map of the whole bottleneck: lets G move content across a small
    image (a mirror is a long-range permutation that 3×3 convolutions learn slowly)."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.dense = nn.Linear(channels * side * side, channels * side * side)
        nn.init.zeros_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dense(x.flatten(1)).view_as(x)


class TranslationGenerator(nn.Module):
    """Image -> image of the same shape: conv, 2 downsamplings, residual blocks (and, with
    `global_mix`, a dense residual layer), 2 upsamplings, conv, tanh."""

    def __init__(
        self,
        channels: int,
        size: int,
        width: int,
        blocks: int,
        norm: str,
        global_mix: bool = False,
    ) -> None:
        super().__init__()
        k = edge_kernel(size)
        w = width
        layers: list[nn.Module] = [
            nn.Conv2d(channels, w, k, padding=k // 2),
            norm_layer(norm, w),
            nn.ReLU(),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(w * mult, w * mult * 2, 3, stride=2, padding=1),
                norm_layer(norm, w * mult * 2),
                nn.ReLU(),
            ]
        layers += [ResidualBlock(4 * w, norm) for _ in range(blocks)]
        if global_mix:
            layers.append(GlobalMix(4 * w, size // 4))
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(w * mult, w * mult // 2, 3, 2, padding=1, output_padding=1),
                norm_layer(norm, w * mult // 2),
                nn.ReLU(),
            ]
        layers += [nn.Conv2d(w, channels, k, padding=k // 2), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """Image -> logits: a grid [n, 1, h, w] (PatchGAN) or one per image [n] (`patch=False`)."""

    def __init__(
        self, channels: int, width: int, layers: int, norm: str, patch: bool = True
    ) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        w = width
        for _ in range(layers - 1):
            mods += [nn.Conv2d(w, 2 * w, 4, 2, 1), norm_layer(norm, 2 * w), nn.LeakyReLU(0.2)]
            w *= 2
        mods.append(nn.Conv2d(w, 1, 3, padding=1))
        self.net, self.patch = nn.Sequential(*mods), patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out if self.patch else out.mean(dim=(1, 2, 3))


def check_architecture(arch: dict[str, Any]) -> None:
    """ConfigError unless the image size survives G's two downsamplings and D's `d_layers`."""
    size, layers = int(arch["shape"][-1]), int(arch["d_layers"])
    if arch["shape"][-1] != arch["shape"][-2] or size % 4:
        raise ConfigError(
            f"CycleGAN needs square images whose side is a multiple of 4, got "
            f"{arch['shape'][-2]}×{arch['shape'][-1]}; set data.image_size"
        )
    if arch.get("g_global") and size > 16:
        raise ConfigError(
            f"model.g_global: a dense bottleneck at {size} px is too large; use it at 16 px or "
            "below (set model.g_global=false)"
        )
    if layers < 1 or size >> layers < 1:
        raise ConfigError(
            f"model.d_layers = {layers} halves {size} px below one pixel; "
            f"use 1..{size.bit_length() - 1}"
        )


def build_networks(arch: dict[str, Any]) -> dict[str, nn.Module]:
    """G (A->B), F (B->A), D_A and D_B from an architecture spec."""
    check_architecture(arch)
    c, size = int(arch["shape"][0]), int(arch["shape"][-1])

    def gen() -> nn.Module:
        return TranslationGenerator(
            c, size, arch["g_width"], arch["g_blocks"], arch["norm"], arch.get("g_global", False)
        )

    def disc() -> nn.Module:
        return PatchDiscriminator(c, arch["d_width"], arch["d_layers"], arch["norm"], arch["patch"])

    return {"g_ab": gen(), "g_ba": gen(), "d_a": disc(), "d_b": disc()}
