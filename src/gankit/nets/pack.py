"""PacGAN packing (Lin et al. 2018): the discriminator judges m samples at once.

`PackedDiscriminator(inner, m)` concatenates each run of m consecutive samples of a batch — along
the feature axis for flat data, along the channel axis for images — and scores the pack with
`inner`, which was built for m times the channels. A collapsed generator makes packs of nearly
identical samples, which real packs never are, so D can penalise the lack of variety.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import DataError


def packed_shape(shape: list[int], pack: int) -> list[int]:
    """The shape one pack of `pack` samples of `shape` has (first axis multiplied)."""
    return [shape[0] * pack, *shape[1:]]


class PackedDiscriminator(nn.Module):
    """Scores packs of `pack` consecutive samples: input [N, *S] → scores [N / pack]."""

    def __init__(self, inner: nn.Module, pack: int) -> None:
        super().__init__()
        if pack < 1:
            raise DataError(f"pack must be >= 1, got {pack}")
        self.inner = inner
        self.pack = pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n % self.pack:
            raise DataError(
                f"packed discriminator: batch of {n} samples is not divisible by pack={self.pack}"
            )
        return self.inner(x.reshape(n // self.pack, x.shape[1] * self.pack, *x.shape[2:]))
