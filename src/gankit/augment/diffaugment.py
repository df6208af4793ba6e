"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) with ADA's adaptive probability.

The same random transformations are drawn for real and generated images — every batch the
discriminator sees passes through one `DiffAugment` — and every operation is differentiable,
so the generator's gradient flows through it. With `p` < 1 each sample is transformed with
probability p per operation (Karras et al. 2020, ADA); with `target` set, p adapts: the
discriminator's overfitting signal r = E[sign D(x_real)] is compared with the target after each
discriminator step and p moves up (r too high: D too sure of the real set) or down, at a rate of
one unit per `speed` real images seen.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gankit.errors import DataError


def _uniform(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * (high - low) + low


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (±0.5), saturation (×0–2) and contrast (×0.5–1.5), per sample."""
    x = x + _uniform(x, -0.5, 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _uniform(x, 0.0, 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, 0.5, 1.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio·size pixels (whole pixels), filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy  # source row for each target row
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(n, 1, h * w)
    moved = x.reshape(n, x.shape[1], h * w).gather(2, index.expand(-1, x.shape[1], -1))
    return moved.view_as(x) * inside


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of ratio·size per image."""
    n, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    top = torch.randint(0, h - ch + 1, (n, 1, 1), device=x.device)
    left = torch.randint(0, w - cw + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~hole).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


class DiffAugment:
    """A DiffAugment policy applied per sample with probability p (adaptive when `target` > 0)."""

    def __init__(
        self, policy: str, p: float = 1.0, target: float = 0.0, speed: float = 100_000.0
    ) -> None:
        self.ops = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [op for op in self.ops if op not in POLICIES]
        if unknown or not self.ops:
            raise DataError(f"augment policy {policy!r}: choose from {', '.join(POLICIES)}")
        self.p, self.target, self.speed = float(p), float(target), float(speed)
        self.signal = 0.0  # the last r = E[sign D(real)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise DataError(f"DiffAugment works on images [N, C, H, W], got shape {tuple(x.shape)}")
        for op in self.ops:
            if self.p <= 0:
                break
            out = POLICIES[op](x)
            if self.p < 1:
                keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.p
                out = torch.where(keep, x, out)
            x = out
        return x

    def observe(self, real_scores: torch.Tensor) -> None:
        """ADA: nudge p after a discriminator step from the sign of D on (augmented) reals."""
        if self.target <= 0:
            return
        self.signal = float(torch.sign(real_scores.detach()).float().mean())
        step = real_scores.shape[0] / self.speed
        self.p = min(1.0, max(0.0, self.p + step * (1 if self.signal > self.target else -1)))

    def state_dict(self) -> dict[str, float]:
        """The adaptive state, for checkpoints."""
        return {"p": self.p, "signal": self.signal}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p, self.signal = float(state["p"]), float(state["signal"])
