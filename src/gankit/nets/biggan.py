"""BigGAN networks at small scale (Brock et al. 2019).

* `BigGANGenerator`: z is split into one chunk per stage (**hierarchical latent**): the first
  chunk is projected to a 4×4 map, and each up-sampling residual block receives its own chunk
  concatenated with a **shared class embedding**; its batch norms take their gains and biases
  as linear maps of that vector (`LinearConditionalBatchNorm`). A **self-attention** block
  (SAGAN, Zhang et al. 2019) follows the block that reaches `attention` px.
* The discriminator is the residual D of SNGAN (`gankit.nets.resnet.DiscBlock`, channels doubling
  per block) with the same attention resolution, ReLU and global sum pooling as its body, and
  the **projection** (or ACGAN) heads of `gankit.nets.conditional.ConditionalDiscriminator`.

Spectral norm is applied to every conv and linear layer of both networks when `spectral_norm`
is set (BigGAN uses it in G and D). `orthogonal_penalty` is BigGAN's orthogonal regularisation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.nets.conditional import ConditionalDiscriminator, _image_dims, _num_classes
from gankit.nets.layers import apply_spectral_norm, init_weights
from gankit.nets.resnet import DiscBlock


def orthogonal_penalty(module: nn.Module, skip: tuple[nn.Parameter, ...] = ()) -> torch.Tensor:
    """Σ_W ‖W Wᵀ ⊙ (1 − I)‖²_F over the weight matrices of `module` (rows = filters: conv kernels
    flattened to [out, in·k·k]; vectors and the parameters in `skip` excluded): BigGAN's
    orthogonal regularisation, which leaves the filters' norms free and penalises only their
    overlap. Computed as ‖WᵀW‖²_F − Σᵢ‖wᵢ‖⁴ (equal), so the Gram matrix is the smaller one."""
    skipped = {id(p) for p in skip}
    terms = []
    for p in module.parameters():
        if p.dim() < 2 or id(p) in skipped:
            continue
        w = p.reshape(p.shape[0], -1)
        gram = w.t() @ w if w.shape[0] > w.shape[1] else w @ w.t()
        terms.append(gram.pow(2).sum() - w.pow(2).sum(dim=1).pow(2).sum())
    return torch.stack(terms).sum() if terms else torch.zeros(())


def split_sizes(latent_dim: int, chunks: int) -> list[int]:
    """Sizes of the hierarchical-z chunks: equal, the remainder going to the first chunk."""
    if latent_dim < chunks:
        raise ConfigError(
            f"model.latent_dim = {latent_dim} cannot be split into {chunks} chunks (one per "
            f"generator stage); set model.latent_dim >= {chunks}"
        )
    size = latent_dim // chunks
    return [latent_dim - size * (chunks - 1)] + [size] * (chunks - 1)


def _stages(image_size: int) -> int:
    stages = int(math.log2(image_size)) - 2 if image_size >= 8 else 0
    if stages < 1 or 4 * 2**stages != image_size:
        raise ConfigError(
            f"model.family 'biggan' needs square images of 8, 16, 32, ... px, got {image_size}"
        )
    return stages


def _check_attention(attention: int, image_size: int) -> None:
    sizes = [4 * 2**i for i in range(1, _stages(image_size))]  # inner stages of G and D
    if attention != 0 and attention not in sizes:
        raise ConfigError(
            f"model.attention = {attention}: the inner stages of {image_size} px networks are "
            f"{sizes or 'none'}; choose one of them, or 0 for no self-attention (BigGAN puts it "
            "at >= 16 px)"
        )


class LinearConditionalBatchNorm(nn.Module):
    """BatchNorm without affine, then x̂·(1 + γ(c)) + β(c), γ and β linear in the conditioning
    vector c (BigGAN: c = the block's z chunk and the shared class embedding)."""

    def __init__(self, features: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(features, affine=False)
        self.gain = nn.Linear(cond_dim, features, bias=False)
        self.bias = nn.Linear(cond_dim, features, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(cond)[:, :, None, None]
        return self.norm(x) * gain + self.bias(cond)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + γ·o(softmax(θ(x)ᵀφ(x)) g(x)), γ starting at 0."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.theta = nn.Conv2d(channels, inner, 1, bias=False)
        self.phi = nn.Conv2d(channels, inner, 1, bias=False)
        self.g = nn.Conv2d(channels, max(1, channels // 2), 1, bias=False)
        self.o = nn.Conv2d(max(1, channels // 2), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _c, h, w = x.shape
        theta, phi = self.theta(x).flatten(2), self.phi(x).flatten(2)
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [n, hw, hw]
        out = self.g(x).flatten(2) @ attn.transpose(1, 2)
        return x + self.gamma * self.o(out.view(n, -1, h, w))


class GeneratorBlock(nn.Module):
    """CBN-ReLU-upsample-conv-CBN-ReLU-conv with an upsampled 1×1 shortcut (BigGAN's G block)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = LinearConditionalBatchNorm(c_in, cond_dim)
        self.bn2 = LinearConditionalBatchNorm(c_out, cond_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class BigGANGenerator(nn.Module):
    """z, y → [z₀ → 4×4 map] → up-blocks (block i conditioned on [zᵢ, embed(y)]) → BN-ReLU-conv
    → tanh. `forward(z, labels)`."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        num_classes: int,
        width: int = 64,
        embed_dim: int = 128,
        attention: int = 0,
    ) -> None:
        super().__init__()
        stages = _stages(image_size)
        _check_attention(attention, image_size)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.splits = split_sizes(latent_dim, stages + 1)
        self.top = top = width * 2**stages
        self.shared = nn.Embedding(num_classes, embed_dim)
        self.project = nn.Linear(self.splits[0], top * 16)
        cond_dim = self.splits[1] + embed_dim
        self.blocks = nn.ModuleList(
            GeneratorBlock(top // 2**i, top // 2 ** (i + 1), cond_dim) for i in range(stages)
        )
        self.attention_after = -1
        self.attention: nn.Module = nn.Identity()
        if attention:
            self.attention_after = int(math.log2(attention // 4)) - 1
            self.attention = SelfAttention(top // 2 ** (self.attention_after + 1))
        self.out = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chunks = z.split(self.splits, dim=1)
        embedded = self.shared(labels)
        h = self.project(chunks[0]).view(z.shape[0], self.top, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([chunks[i + 1], embedded], dim=1))
            if i == self.attention_after:
                h = self.attention(h)
        return self.out(h)


class _SumPool(nn.Module):
    """ReLU, then the sum over spatial positions: [n, C, H, W] → [n, C] (BigGAN's D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).sum(dim=(2, 3))


def biggan_discriminator_body(
    channels: int, image_size: int, width: int, attention: int
) -> tuple[nn.Module, int]:
    """Residual blocks down to 4×4 (channels width·2ⁱ), one more at 4×4, attention after the
    block that reaches `attention` px, ReLU and sum pooling; returns (body, feature count)."""
    stages = _stages(image_size)
    _check_attention(attention, image_size)
    layers: list[nn.Module] = []
    c_in, size = channels, image_size
    for i in range(stages):
        c_out = width * 2**i
        layers.append(DiscBlock(c_in, c_out, downsample=True, first=i == 0))
        c_in, size = c_out, size // 2
        if attention and size == attention:
            layers.append(SelfAttention(c_out))
    layers += [DiscBlock(c_in, c_in, downsample=False), _SumPool()]
    return nn.Sequential(*layers), c_in


def build_biggan_generator(spec: dict[str, Any]) -> nn.Module:
    """G of the `biggan` family from its architecture spec (spectral norm when `spectral_norm`;
    the shared embedding is left unnormalised, as in BigGAN)."""
    net = BigGANGenerator(
        spec["latent_dim"],
        *_image_dims(spec),
        _num_classes(spec),
        spec["g_width"],
        int(spec.get("embed_dim", 128)),
        int(spec.get("attention", 0)),
    )
    init_weights(net, spec.get("init", "default"))
    return apply_spectral_norm(net) if spec.get("spectral_norm", True) else net


def build_biggan_discriminator(spec: dict[str, Any]) -> nn.Module:
    """D of the `biggan` family: the residual body with projection (or ACGAN) heads."""
    channels, size = _image_dims(spec)
    body, features = biggan_discriminator_body(
        channels, size, spec["d_width"], int(spec.get("attention", 0))
    )
    net = ConditionalDiscriminator(
        body, features, _num_classes(spec), spec.get("conditioning", "projection")
    )
    init_weights(net, spec.get("init", "default"))
    return apply_spectral_norm(net) if spec.get("spectral_norm", True) else net
