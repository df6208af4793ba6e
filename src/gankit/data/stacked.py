"""Stacked digits: three independent 8×8 digits as the three channels of one image.

The analog of Stacked MNIST (Metz et al. 2017; Lin et al. 2018) on scikit-learn's digits: each
channel is a uniformly chosen training digit, so the 1,000 triples (d₁, d₂, d₃) are equally
likely modes. It is an analog, not Stacked MNIST: never compare its numbers with those tables.
"""

from __future__ import annotations

import torch

from gankit.data.images import load_digits


def stacked_digits(
    n: int, split: str = "train", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """n stacked images [n, 3, 8, 8] in [-1, 1] and their per-channel labels [n, 3]."""
    x, y = load_digits(split)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(x), (n, 3), generator=gen)
    return x[idx, 0], y[idx]


def stacked_code(labels: torch.Tensor) -> torch.Tensor:
    """Mode index 100·d₁ + 10·d₂ + d₃ of per-channel labels [n, 3]."""
    return (labels[:, 0] * 10 + labels[:, 1]) * 10 + labels[:, 2]
