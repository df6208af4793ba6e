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


def build_generator(spec: dict[str, Any]) -> nn.Module:
    """The generator described by `spec`."""
    family, z, shape = spec["family"], spec["latent_dim"], spec["data_shape"]
    if family in ("mlp", "goodfellow"):
        hidden = [spec["g_width"]] * spec["depth"]
        net: nn.Module = MLPGenerator(
            z, shape, hidden, spec["g_activation"], spec["g_batch_norm"], spec["g_output"]
        )
    elif family == "dcgan":
        net = DCGANGenerator(z, *_image_dims(spec), width=spec["g_width"])
    elif family == "resnet":
        net = ResNetGenerator(z, *_image_dims(spec), width=spec["g_width"])
    else:
        raise ConfigError(f"unknown model.family {family!r}")
    init_weights(net, spec["init"])
    categories = int(spec.get("latent_categories", 0))
    return CategoricalLatent(net, categories, z) if categories else net


def build_discriminator(spec: dict[str, Any]) -> nn.Module:
    """The discriminator described by `spec` (spectral norm applied; packed when `pack` > 1)."""
    pack = int(spec.get("pack", 1))
    if pack > 1:
        inner = build_discriminator(
            {**spec, "pack": 1, "data_shape": packed_shape(spec["data_shape"], pack)}
        )
        return PackedDiscriminator(inner, pack)
    family, shape = spec["family"], spec["data_shape"]
    hidden = [spec["d_width"]] * spec["depth"]
    if family == "mlp":
        net: nn.Module = MLPDiscriminator(
            shape, hidden, spec["d_activation"], spec["d_dropout"], spec["minibatch_std"]
        )
    elif family == "goodfellow":
        net = MaxoutDiscriminator(shape, hidden, spec["maxout_pieces"], spec["d_dropout"])
    elif family == "dcgan":
        net = DCGANDiscriminator(
            *_image_dims(spec), spec["d_width"], spec["d_batch_norm"], spec["minibatch_std"]
        )
    elif family == "resnet":
        net = ResNetDiscriminator(*_image_dims(spec), width=spec["d_width"])
    else:
        raise ConfigError(f"unknown model.family {family!r}")
    init_weights(net, spec["init"])
    return apply_spectral_norm(net) if spec["spectral_norm"] else net
