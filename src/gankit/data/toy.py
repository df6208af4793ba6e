"""2-D toy mixtures for mode-collapse studies (protocols in research/mode_collapse.md).

Ring means sit at angles 2πk/K (not `linspace(0, 2π, K)`, which repeats a centre).
"""

from __future__ import annotations

import math

import torch

from gankit.errors import DataError

# Presets from the VEEGAN/PacGAN protocol.
RING_PRESET = {"modes": 8, "radius": 1.0, "std": 0.01}
GRID_PRESET = {"size": 5, "spacing": 2.0, "std": 0.05}


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise DataError(f"{name} must be > 0, got {value!r}")


def ring_means(modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    """Centres (radius·cos 2πk/K, radius·sin 2πk/K), shape [K, 2]."""
    _check_positive(modes=modes, radius=radius)
    angles = torch.tensor([2 * math.pi * k / modes for k in range(modes)], dtype=torch.float64)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_means(size: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """Centres on a size×size grid centred at 0 (spacing 2, size 5 → {-4,…,4}²), shape [K, 2]."""
    _check_positive(size=size, spacing=spacing)
    axis = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def sample_mixture(means: torch.Tensor, n: int, std: float, seed: int | None = 0) -> torch.Tensor:
    """n points from an equal-weight isotropic Gaussian mixture."""
    _check_positive(n=n, std=std)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    idx = torch.randint(len(means), (n,), generator=gen)
    return means[idx] + std * torch.randn(n, means.shape[1], generator=gen)


def sample_ring(
    n: int, modes: int = 8, radius: float = 1.0, std: float = 0.01, seed: int | None = 0
) -> torch.Tensor:
    """n points from the ring of Gaussians, shape [n, 2]."""
    return sample_mixture(ring_means(modes, radius), n, std, seed)


def sample_grid(
    n: int, size: int = 5, spacing: float = 2.0, std: float = 0.05, seed: int | None = 0
) -> torch.Tensor:
    """n points from the grid of Gaussians, shape [n, 2]."""
    return sample_mixture(grid_means(size, spacing), n, std, seed)


def sample_swiss_roll(n: int, noise: float = 0.05, seed: int | None = 0) -> torch.Tensor:
    """n points of the 2-D swiss roll (scikit-learn's generator, x and z axes, scaled by 1/7)."""
    from sklearn.datasets import make_swiss_roll

    _check_positive(n=n)
    points, _ = make_swiss_roll(n, noise=noise, random_state=seed)
    return torch.from_numpy(points[:, [0, 2]] / 7.0).float()
