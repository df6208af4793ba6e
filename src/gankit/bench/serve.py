"""`gankit bench serve`: load test of the service on loopback, and ONNX Runtime vs eager.

Placeholder filled in below: `make_generator_dir` builds an (untrained) model directory with
the digits DCGAN architecture; throughput does not depend on the weights' values.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from gankit.config import ModelConfig
from gankit.modeldir import write_model_dir
from gankit.nets import architecture_spec, build_generator


def make_generator_dir(
    directory: str | Path,
    family: str = "dcgan",
    shape: tuple[int, ...] = (1, 8, 8),
    latent_dim: int = 64,
    width: int = 64,
    seed: int = 0,
    name: str | None = None,
) -> Path:
    """Write a generator model directory (random weights) that `gankit.load_generator` reads."""
    torch.manual_seed(seed)
    model = asdict(ModelConfig(family=family, latent_dim=latent_dim, g_width=width, init="dcgan"))
    arch = architecture_spec(model, shape)
    net = build_generator(arch).eval()
    is_image = len(shape) == 3
    spec: dict[str, Any] = {
        "kind": "image-generator" if is_image else "toy-generator",
        "architecture": arch,
        "latent_dim": latent_dim,
        "num_classes": None,
        "data": {"name": "digits" if is_image else "ring", "shape": list(shape), "range": [-1, 1]},
        "step": 0,
        "config": {"model": model},
    }
    if name:
        spec["name"] = name
    return write_model_dir(directory, net.state_dict(), spec)
