"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic kernel.

k(x, y) = (xᵀy / d + 1)³. The estimate is averaged over `subsets` random subsets of
`subset_size` samples from each set (drawn without replacement within a subset, with a seeded
`torch.Generator`), as in the MMD-GAN scoring code and torch-fidelity (100 × 1,000). Unlike FID,
the estimator is unbiased, so small sample sizes are comparable.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch

from gankit.metrics._common import as_features, check_same_dim


class KIDResult(NamedTuple):
    """Mean and standard deviation (ddof=0) of the subset MMD² estimates."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_kernel(
    x: torch.Tensor,
    y: torch.Tensor,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> torch.Tensor:
    """(γ xᵀy + c)^degree with γ = 1/d by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, **kernel: Any) -> float:
    """Unbiased MMD² between two equally sized samples (diagonal terms of K_xx, K_yy dropped)."""
    m = x.shape[0]
    k_xx = polynomial_kernel(x, x, **kernel)
    k_yy = polynomial_kernel(y, y, **kernel)
    k_xy = polynomial_kernel(x, y, **kernel)
    off_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    off_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(off_xx + off_yy - 2.0 * k_xy.mean())


def kernel_inception_distance(
    *,
    real: Any,
    fake: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> KIDResult:
    """KID between feature sets [N, d]; the subset size is capped by the smaller set (warns)."""
    x = as_features(real, "real")
    y = as_features(fake, "fake")
    check_same_dim(x, y, ("real", "fake"))
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < subset_size:
        warnings.warn(
            f"KID subset size reduced from {subset_size} to {m} (real has {x.shape[0]}, "
            f"fake has {y.shape[0]} samples)",
            stacklevel=2,
        )
    if m < 2:
        from gankit.errors import DataError

        raise DataError(f"KID needs at least 2 samples per set, found {m}")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        ix = torch.randperm(x.shape[0], generator=gen)[:m]
        iy = torch.randperm(y.shape[0], generator=gen)[:m]
        values.append(mmd2_unbiased(x[ix], y[iy], degree=degree, gamma=gamma, coef0=coef0))
    t = torch.tensor(values, dtype=torch.float64)
    return KIDResult(float(t.mean()), float(t.std(unbiased=False)), subsets, m)
