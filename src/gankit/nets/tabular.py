"""Networks for encoded table rows (CTGAN, Xu et al. 2019, written from the paper).

* `ResidualGenerator`: residual blocks (Linear, BatchNorm, ReLU, concatenated with the input).
* `pac_critic`: a WGAN critic on PacGAN packs — `PackedDiscriminator` around an MLP with
  LeakyReLU(0.2) and dropout 0.5.
* `SpanActivation`: tanh on scalar entries, Gumbel-softmax on every one-hot span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from gankit.nets.mlp import MLPDiscriminator
from gankit.nets.pack import PackedDiscriminator


@dataclass
class Span:
    """A block of the encoded row: 'tanh' (one alpha) or 'softmax' (a one-hot of `width`)."""

    width: int
    activation: str


class Residual(nn.Module):
    """Linear -> BatchNorm -> ReLU, concatenated with its input (CTGAN's generator block)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.bn = nn.BatchNorm1d(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.bn(self.fc(x))), x], dim=1)


class ResidualGenerator(nn.Module):
    """z and condition vector -> raw encoded row (activations applied by `SpanActivation`)."""

    def __init__(self, z_dim: int, cond_dim: int, hidden: Sequence[int], width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = z_dim + cond_dim
        for h in hidden:
            layers.append(Residual(size, h))
            size += h
        layers.append(nn.Linear(size, width))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, cond], dim=1))


def pac_critic(n_in: int, hidden: Sequence[int], pac: int) -> PackedDiscriminator:
    """CTGAN's critic: packs of `pac` rows, LeakyReLU(0.2), dropout 0.5, one score per pack."""
    return PackedDiscriminator(MLPDiscriminator([n_in * pac], hidden, "leaky_relu", 0.5), pac)


class SpanActivation:
    """tanh on alpha entries and Gumbel-softmax on every one-hot span, in a few batched ops.

    The spans are gathered into a padded (batch, widest, spans) tensor (padding = -inf) and
    normalised along dim 1: one softmax for all columns, and along a contiguous middle axis,
    which is ~5x faster on CPU than a softmax over a short last axis. Gumbel noise is drawn
    once on the raw row (-log(-log U)), cheaper than the padded tensor's exponential draw.
    """

    def __init__(self, spans: list[Span]) -> None:
        tanh_idx, soft_rows, pos = [], [], 0
        for span in spans:
            if span.activation == "tanh":
                tanh_idx.append(pos)
            else:
                soft_rows.append(list(range(pos, pos + span.width)))
            pos += span.width
        widest = max((len(r) for r in soft_rows), default=1)
        padded = [r + [r[0]] * (widest - len(r)) for r in soft_rows] or [[0]]
        valid = [[i < len(r) for i in range(widest)] for r in soft_rows] or [[False]]
        # (widest, spans) layout, flattened: the softmax runs along the widest axis
        self.shape = (widest, len(padded))
        self.gather = torch.tensor(padded, dtype=torch.long).t().reshape(-1)
        self.valid = torch.tensor(valid).t().reshape(-1)
        self.tanh_idx = torch.tensor(tanh_idx, dtype=torch.long)
        self.soft_idx = torch.tensor(padded, dtype=torch.long).t().reshape(-1)[self.valid]

    def to(self, device: torch.device) -> SpanActivation:
        for name in ("gather", "valid", "tanh_idx", "soft_idx"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def __call__(self, raw: torch.Tensor, tau: float = 0.2, gumbel: bool = True) -> torch.Tensor:
        out = raw.new_zeros(raw.shape)
        if len(self.tanh_idx):
            out = out.index_copy(1, self.tanh_idx, torch.tanh(raw[:, self.tanh_idx]))
        if len(self.soft_idx):
            logits = raw
            if gumbel:
                noise = torch.rand_like(raw).clamp_(1e-10, 1.0 - 1e-7)
                logits = (raw - noise.log_().neg_().log_()) / tau
            padded = logits[:, self.gather].masked_fill(~self.valid, -torch.inf)
            soft = torch.softmax(padded.view(-1, *self.shape), dim=1).view(raw.shape[0], -1)
            out = out.index_copy(1, self.soft_idx, soft[:, self.valid])
        return out
