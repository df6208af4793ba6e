"""Parzen-window log-likelihood, exactly as Goodfellow et al. (2014) report it.

A Gaussian kernel density with bandwidth σ is fitted to generator samples (10,000 in the
paper); σ is chosen from `logspace(-1, 0, 10)` by the mean log-likelihood of a validation set;
the score is the mean log-likelihood of a test set ± its standard error (std/√N):

    log p(x) = logmeanexp_i(−‖x − μᵢ‖² / 2σ²) − D log(σ √(2π)).

Caveat (Theis, van den Oord & Bethge, "A note on the evaluation of generative models",
ICLR 2016): in high dimensions this estimate is far from the true log-likelihood, can rank models
against visual quality, and is beaten by k-means centroids; "Parzen window estimates should
generally be avoided". It is here to reproduce the original paper's table, not to rank models.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from gankit.metrics._common import as_features, check_same_dim, pairwise_sq_dists

SIGMA_GRID: tuple[float, ...] = tuple(float(s) for s in np.logspace(-1, 0, 10))


class ParzenResult(NamedTuple):
    """Mean test log-likelihood (nats), its standard error, the chosen σ and each σ's score."""

    mean: float
    se: float
    sigma: float
    validation: dict[float, float]


def parzen_log_likelihood(
    samples: Any, points: Any, sigma: float, batch_size: int = 100
) -> torch.Tensor:
    """Per-point log-likelihood [M] of `points` under the Parzen window on `samples` (float64)."""
    mu = as_features(samples, "samples")
    x = as_features(points, "points")
    check_same_dim(mu, x, ("samples", "points"))
    n, d = mu.shape
    const = math.log(n) + d * math.log(sigma * math.sqrt(2.0 * math.pi))
    out = torch.empty(x.shape[0], dtype=torch.float64)
    for s in range(0, x.shape[0], batch_size):
        sq = pairwise_sq_dists(x[s : s + batch_size], mu)
        out[s : s + batch_size] = torch.logsumexp(-sq / (2.0 * sigma**2), dim=1) - const
    return out


def parzen_window(
    *,
    samples: Any,
    valid: Any,
    test: Any,
    sigmas: tuple[float, ...] | None = None,
    batch_size: int = 100,
) -> ParzenResult:
    """Choose σ on `valid`, then score `test`: mean ± standard error (ddof=0, as in the paper)."""
    grid = SIGMA_GRID if sigmas is None else tuple(float(s) for s in sigmas)
    scores = {s: float(parzen_log_likelihood(samples, valid, s, batch_size).mean()) for s in grid}
    best = max(scores, key=lambda s: scores[s])
    ll = parzen_log_likelihood(samples, test, best, batch_size)
    se = float(ll.std(unbiased=False) / math.sqrt(ll.shape[0]))
    return ParzenResult(float(ll.mean()), se, best, scores)
