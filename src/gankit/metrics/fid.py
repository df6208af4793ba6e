"""Fréchet distance between Gaussian fits of two feature sets (FID with Inception features).

d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁^½ Σ₂ Σ₁^½)   (Heusel et al. 2017)

Everything is float64. The trace of the square root is Σ √λᵢ over the eigenvalues (`eigvalsh`,
negative round-off clamped to 0) of the symmetric PSD matrix Wᵀ Σ₂ W, where W Wᵀ = Σ₁. Any such
factor gives the eigenvalues of Σ₁^½ Σ₂ Σ₁^½ (all are similar to Σ₁Σ₂): we take the Cholesky
factor when Σ₁ is positive definite (0.15 s for d = 2,048, against 10+ s for `eigh` with
vectors); with N ≤ d samples the centred samples (X − μ)ᵀ/√(N−1) are an exact d × N factor
(an N × N eigenproblem, and no square roots of round-off around zero eigenvalues); W = V Λ^½
from `eigh` remains for singular precomputed statistics. No `scipy.linalg.sqrtm`: it is
several times slower, returns complex round-off and has regressed between SciPy versions.

`FeatureStats.from_features` computes the mean and centred scatter in two exact passes;
`FeatureStats.update` merges batches as they stream in (Chan et al.'s pairwise update), so the
result does not depend on the batch size or on the order of samples.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from gankit.errors import DataError
from gankit.metrics._common import as_features


@dataclass
class FeatureStats:
    """Running mean and centred scatter matrix of features, in float64; merge-able."""

    dim: int
    n: int = 0
    mean: torch.Tensor = field(default=None)  # type: ignore[assignment]
    scatter: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.mean is None:
            self.mean = torch.zeros(self.dim, dtype=torch.float64)
        if self.scatter is None:
            self.scatter = torch.zeros(self.dim, self.dim, dtype=torch.float64)

    def update(self, batch: Any) -> FeatureStats:
        """Add a batch [B, d] of features (tensor or array)."""
        x = as_features(batch, "features")
        if x.shape[1] != self.dim:
            raise DataError(f"features: expected {self.dim} per sample, found {x.shape[1]}")
        n_b = x.shape[0]
        mean_b = x.mean(0)
        xc = x - mean_b
        scatter_b = xc.T @ xc
        n = self.n + n_b
        delta = mean_b - self.mean
        self.scatter += scatter_b + torch.outer(delta, delta) * (self.n * n_b / n)
        self.mean += delta * (n_b / n)
        self.n = n
        return self

    @property
    def cov(self) -> torch.Tensor:
        """Unbiased covariance (ddof=1), as numpy.cov and every FID reference use."""
        if self.n < 2:
            raise DataError(f"features: need at least 2 samples for a covariance, found {self.n}")
        return self.scatter / (self.n - 1)

    @classmethod
    def from_features(cls, features: Any, batch_size: int = 4096) -> FeatureStats:
        """Statistics of a whole feature set: exact two-pass mean and centred scatter."""
        x = as_features(features, "features")
        stats = cls(dim=x.shape[1], n=x.shape[0], mean=x.mean(0))
        for start in range(0, x.shape[0], batch_size):
            xc = x[start : start + batch_size] - stats.mean
            stats.scatter.addmm_(xc.T, xc)
        return stats


def _stats(x: Any, name: str) -> FeatureStats:
    if isinstance(x, FeatureStats):
        return x
    try:
        return FeatureStats.from_features(x)
    except DataError as exc:
        raise DataError(f"{name}: {exc}") from exc


def _sqrt_factor(sigma: torch.Tensor) -> torch.Tensor:
    """A factor W with W Wᵀ = Σ: Cholesky when Σ is positive definite, else V Λ^½ from eigh."""
    chol, info = torch.linalg.cholesky_ex(sigma)
    if int(info) == 0:
        return chol
    lam, vecs = torch.linalg.eigh(sigma)
    return vecs * lam.clamp_min(0.0).sqrt()[None, :]


def trace_sqrt_product(
    sigma1: torch.Tensor, sigma2: torch.Tensor, factor1: torch.Tensor | None = None
) -> torch.Tensor:
    """tr √(Σ₁ Σ₂) for symmetric PSD matrices: Σ √λ of the symmetric Wᵀ Σ₂ W, W Wᵀ = Σ₁.

    `factor1` may supply W directly (d × k), e.g. the centred samples when N ≤ d.
    """
    w = _sqrt_factor(sigma1) if factor1 is None else factor1
    m = w.T @ sigma2 @ w
    m = 0.5 * (m + m.T)
    return torch.linalg.eigvalsh(m).clamp_min(0.0).sqrt().sum()


def frechet_distance(*, real: Any, fake: Any) -> float:
    """Fréchet distance between two feature sets [N, d] (or their `FeatureStats`).

    Warns when a set has fewer samples than dimensions: its covariance is then singular and the
    estimate is strongly biased (compare only numbers computed with the same N).
    """
    s1, s2 = _stats(real, "real"), _stats(fake, "fake")
    if s1.dim != s2.dim:
        raise DataError(f"real has {s1.dim} features per sample but fake has {s2.dim}")
    for name, s in (("real", s1), ("fake", s2)):
        if s.n < s.dim:
            warnings.warn(
                f"{name}: {s.n} samples < {s.dim} feature dimensions; the covariance is "
                "rank-deficient and the Fréchet distance is biased upward",
                stacklevel=2,
            )
    diff = s1.mean - s2.mean
    c1, c2 = s1.cov, s2.cov
    factor = None
    # tr √(Σ₁Σ₂) is symmetric in the two sets; with few samples, (X − μ)ᵀ/√(N−1) is an exact
    # d × N factor of that set's Σ, and the eigenproblem shrinks to N × N (no singular eigh).
    small = [
        (s.n, x, s, other)
        for x, s, other in ((real, s1, c2), (fake, s2, c1))
        if s.n <= s.dim and not isinstance(x, FeatureStats)
    ]
    if small:
        _, x, s, other = min(small, key=lambda t: t[0])
        factor = (as_features(x, "features") - s.mean).T / math.sqrt(s.n - 1)
        tr_sqrt = trace_sqrt_product(s.cov, other, factor)
    else:
        tr_sqrt = trace_sqrt_product(c1, c2)
    value = diff @ diff + torch.trace(c1) + torch.trace(c2) - 2.0 * tr_sqrt
    return float(value)
