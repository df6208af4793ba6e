"""Network families. `build_generator`/`build_discriminator` turn an architecture spec into modules.

The spec is the `model` config section plus the data shape; it is stored in `model.json`, so a
generator can be rebuilt from its model directory without any code from the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from gankit.errors import ConfigError
from gankit.nets.categorical import CategoricalLatent
from gankit.nets.conditional import (
    CONDITIONAL_FAMILIES,
    build_conditional_discriminator,
    build_conditional_generator,
)
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nets.layers import apply_spectral_norm, init_weights
from gankit.nets.mlp import MaxoutDiscriminator, MLPDiscriminator, MLPGenerator
from gankit.nets.pack import PackedDiscriminator, packed_shape
from gankit.nets.resnet import ResNetDiscriminator, ResNetGenerator

__all__ = [
    "CategoricalLatent",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "MaxoutDiscriminator",
    "PackedDiscriminator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "architecture_spec",
    "build_discriminator",
    "build_generator",
]


def architecture_spec(model: dict[str, Any], data_shape: Sequence[int]) -> dict[str, Any]:
    """The spec stored in model.json: model settings plus the shape of one sample."""
    return {**model, "data_shape": list(data_shape)}


def _image_dims(spec: dict[str, Any]) -> tuple[int, int]:
    shape = spec["data_shape"]
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(
            f"model.family {spec['family']!r} needs square images [C, H, H], got data shape {shape}"
        )
    return shape[0], shape[1]


def _depth(spec: dict[str, Any], net: str) -> int:
    """Hidden layers of G or D (model.json before 0.2 stored one `depth` for both)."""
    return int(spec.get(f"{net}_depth", spec.get("depth", 2)))


def build_generator(spec: dict[str, Any]) -> nn.Module:
    """The generator described by `spec` (class-conditional families: `forward(z, labels)`)."""
    if spec["family"] in CONDITIONAL_FAMILIES:
        return build_conditional_generator(spec)
    family, z, shape = spec["family"], spec["latent_dim"], spec["data_shape"]
    if family in ("mlp", "goodfellow"):
        hidden = [spec["g_width"]] * _depth(spec, "g")
        net: nn.Module = MLPGenerator(
            z,
            shape,
            hidden,
            spec.get("g_activation", "relu"),
            spec.get("g_batch_norm", False),
            spec.get("g_output", "tanh"),
        )
    elif family == "dcgan":
        net = DCGANGenerator(z, *_image_dims(spec), width=spec["g_width"])
    elif family == "resnet":
        net = ResNetGenerator(z, *_image_dims(spec), width=spec["g_width"])
    else:
        raise ConfigError(f"unknown model.family {family!r}")
    init_weights(net, spec.get("init", "default"))
    categories = int(spec.get("latent_categories", 0))
    return CategoricalLatent(net, categories, z) if categories else net


def build_discriminator(spec: dict[str, Any]) -> nn.Module:
    """The discriminator described by `spec` (spectral norm applied; packed when `pack` > 1).
    Class-conditional families: `forward(x, labels) -> (scores, class logits or None)`."""
    if spec["family"] in CONDITIONAL_FAMILIES:
        return build_conditional_discriminator(spec)
    pack = int(spec.get("pack", 1))
    if pack > 1:
        inner = build_discriminator(
            {**spec, "pack": 1, "data_shape": packed_shape(spec["data_shape"], pack)}
        )
        return PackedDiscriminator(inner, pack)
    family, shape = spec["family"], spec["data_shape"]
    hidden = [spec["d_width"]] * _depth(spec, "d")
    mbstd = spec.get("minibatch_std", False)
    if family == "mlp":
        net: nn.Module = MLPDiscriminator(
            shape, hidden, spec.get("d_activation", "leaky_relu"), spec.get("d_dropout", 0.0), mbstd
        )
    elif family == "goodfellow":
        net = MaxoutDiscriminator(
            shape,
            hidden,
            spec["maxout_pieces"],
            spec.get("d_dropout", 0.0),
            spec.get("d_input_dropout", 0.2),
        )
    elif family == "dcgan":
        net = DCGANDiscriminator(
            *_image_dims(spec), spec["d_width"], spec.get("d_batch_norm", False), mbstd
        )
    elif family == "resnet":
        net = ResNetDiscriminator(*_image_dims(spec), width=spec["d_width"])
    else:
        raise ConfigError(f"unknown model.family {family!r}")
    init_weights(net, spec.get("init", "default"))
    return apply_spectral_norm(net) if spec.get("spectral_norm", False) else net
