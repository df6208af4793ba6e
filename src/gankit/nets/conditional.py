"""Class-conditional networks: conditional batch norm in G; projection or an auxiliary
classifier in D.

* `ConditionalBatchNorm`: batch norm without its own affine, then a per-class scale and shift
  looked up from two embeddings (de Vries et al. 2017; the G of Miyato & Koyama 2018).
* `ConditionalDCGANGenerator` / `ConditionalMLPGenerator`: the DCGAN and MLP generators with
  every batch norm made class-conditional; `forward(z, labels)`.
* `ConditionalDiscriminator`: a body (image -> feature vector φ(x)) and two heads chosen by
  `conditioning`:
  - "projection" (Miyato & Koyama 2018): score = ψ(φ(x)) + ⟨embed(y), φ(x)⟩;
  - "acgan" (Odena et al. 2017): score = ψ(φ(x)) and class logits = W φ(x);
  - "tac" (TAC-GAN, Gong et al. 2019): as "acgan", plus a twin classifier's logits W' φ(x)
    beside them (class logits [n, 2K]: the classifier's K, then the twin's K).
  `forward(x, labels)` returns `(scores [n], class_logits [n, K] ([n, 2K] for tac) or None)`.

The architecture spec is a `model` section (family `cdcgan` or `cmlp`) plus the data shape, as
for the unconditional nets, so `gankit.nets.build_generator` rebuilds them from model.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nets.dcgan import DCGANDiscriminator, _stages
from gankit.nets.layers import (
    Maxout,
    activation,
    apply_spectral_norm,
    init_weights,
    output_activation,
)

CONDITIONAL_FAMILIES = ("cdcgan", "cmlp", "biggan")  # biggan: gankit.nets.biggan
CONDITIONINGS = ("projection", "acgan", "tac")


class ConditionalBatchNorm(nn.Module):
    """BatchNorm (1-d or 2-d, no affine) followed by γ_y·x̂ + β_y, γ initialised to 1, β to 0."""

    def __init__(self, features: int, num_classes: int, dims: int = 2) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.norm = norm(features, affine=False)
        self.scale = nn.Embedding(num_classes, features)
        self.shift = nn.Embedding(num_classes, features)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        return self.norm(x) * self.scale(labels).view(shape) + self.shift(labels).view(shape)


class ConditionalSequential(nn.Sequential):
    """nn.Sequential that hands the labels to its `ConditionalBatchNorm` layers."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, labels) if isinstance(layer, ConditionalBatchNorm) else layer(x)
        return x


class ConditionalDCGANGenerator(nn.Module):
    """The DCGAN generator (z → 4×4 → up-convolutions → tanh) with class-conditional BN."""

    def __init__(
        self, latent_dim: int, channels: int, image_size: int, num_classes: int, width: int = 64
    ) -> None:
        super().__init__()
        stages = _stages(image_size)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.top = top = width * 2**stages
        self.project = nn.Linear(latent_dim, top * 16, bias=False)
        self.project_norm = ConditionalBatchNorm(top * 16, num_classes, dims=1)
        layers: list[nn.Module] = []
        for i in range(stages):
            c_in, c_out = top // 2**i, top // 2 ** (i + 1)
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                ConditionalBatchNorm(c_out, num_classes),
                nn.ReLU(),
            ]
        layers += [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
        self.body = ConditionalSequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.project_norm(self.project(z), labels))
        return self.body(h.view(z.shape[0], self.top, 4, 4), labels)


class ConditionalMLPGenerator(nn.Module):
    """z → (Linear, class-conditional BN, activation) × depth → Linear → output of `out_shape`."""

    def __init__(
        self,
        latent_dim: int,
        out_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (128, 128),
        act: str = "relu",
        output: str = "tanh",
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for w in hidden:
            layers += [
                nn.Linear(width, w),
                ConditionalBatchNorm(w, num_classes, 1),
                activation(act),
            ]
            width = w
        layers += [nn.Linear(width, math.prod(self.out_shape)), output_activation(output)]
        self.net = ConditionalSequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(z, labels).view(z.shape[0], *self.out_shape)


class ConditionalDiscriminator(nn.Module):
    """φ = `body(x)` (flat features), then ψ(φ) plus a projection term, or plus class logits."""

    def __init__(self, body: nn.Module, features: int, num_classes: int, conditioning: str) -> None:
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ConfigError(
                f"model.conditioning = {conditioning!r} is not allowed; choose one of "
                f"{', '.join(CONDITIONINGS)}"
            )
        self.conditioning, self.num_classes = conditioning, num_classes
        self.body = body
        self.head = nn.Linear(features, 1)
        if conditioning == "projection":
            self.embed = nn.Embedding(num_classes, features)
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(features))
        else:
            self.classifier = nn.Linear(features, num_classes)
        if conditioning == "tac":  # the twin classifier shares the body φ
            self.twin = nn.Linear(features, num_classes)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(x)
        scores = self.head(h).squeeze(1)
        if self.conditioning == "projection":
            return scores + (self.embed(labels) * h).sum(dim=1), None
        if self.conditioning == "tac":
            return scores, torch.cat([self.classifier(h), self.twin(h)], dim=1)
        return scores, self.classifier(h)


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


def _image_dims(spec: dict[str, Any]) -> tuple[int, int]:
    shape = spec["data_shape"]
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(
            f"model.family {spec['family']!r} needs square images [C, H, H], got data shape {shape}"
        )
    return shape[0], shape[1]


def _num_classes(spec: dict[str, Any]) -> int:
    k = spec.get("num_classes")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"model.num_classes = {k!r} must be a positive integer")
    return k


def build_conditional_generator(spec: dict[str, Any]) -> nn.Module:
    """G of a conditional family (`cdcgan` or `cmlp`) from its architecture spec."""
    family, z, k = spec["family"], spec["latent_dim"], _num_classes(spec)
    if family == "biggan":
        from gankit.nets.biggan import build_biggan_generator

        return build_biggan_generator(spec)
    if family == "cdcgan":
        net: nn.Module = ConditionalDCGANGenerator(z, *_image_dims(spec), k, spec["g_width"])
    elif family == "cmlp":
        hidden = [spec["g_width"]] * int(spec.get("g_depth", 2))
        net = ConditionalMLPGenerator(
            z,
            spec["data_shape"],
            k,
            hidden,
            spec.get("g_activation", "relu"),
            spec.get("g_output", "tanh"),
        )
    else:
        raise ConfigError(f"unknown conditional model.family {family!r}")
    init_weights(net, spec.get("init", "default"))
    return net


def build_conditional_discriminator(spec: dict[str, Any]) -> nn.Module:
    """D of a conditional family, with spectral norm (also on the projection embedding's
    companions: every conv and linear layer) when `spectral_norm` is set."""
    family, k = spec["family"], _num_classes(spec)
    if family == "biggan":
        from gankit.nets.biggan import build_biggan_discriminator

        return build_biggan_discriminator(spec)
    if family == "cdcgan":
        channels, size = _image_dims(spec)
        plain = DCGANDiscriminator(channels, size, spec["d_width"], spec.get("d_batch_norm", False))
        body: nn.Module = nn.Sequential(plain.body, _Flatten())
        features = plain.head.in_features
    elif family == "cmlp":
        layers: list[nn.Module] = [_Flatten()]
        width = math.prod(spec["data_shape"])
        pieces = int(spec.get("d_maxout_pieces", 0))  # maxout units (PacGAN's toy D) or not
        for _ in range(int(spec.get("d_depth", 2))):
            if pieces:
                layers.append(Maxout(width, spec["d_width"], pieces))
            else:
                act = activation(spec.get("d_activation", "leaky_relu"))
                layers += [nn.Linear(width, spec["d_width"]), act]
            width = spec["d_width"]
        body, features = nn.Sequential(*layers), width
    else:
        raise ConfigError(f"unknown conditional model.family {family!r}")
    net = ConditionalDiscriminator(body, features, k, spec.get("conditioning", "projection"))
    init_weights(net, spec.get("init", "default"))
    return apply_spectral_norm(net) if spec.get("spectral_norm", False) else net
