"""Exponential moving average of the generator's weights (Karras et al.; Yazıcı et al. 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps `shadow`, an averaged copy of a module: θ̄ ← d·θ̄ + (1 - d)·θ. Buffers are copied."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards `module`'s current weights."""
        for avg, live in zip(self.shadow.parameters(), module.parameters(), strict=True):
            avg.lerp_(live.detach(), 1.0 - self.decay)
        for avg, live in zip(self.shadow.buffers(), module.buffers(), strict=True):
            avg.copy_(live)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
