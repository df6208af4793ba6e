"""Inception Score (Salimans et al. 2016) from any classifier's logits.

IS = exp E_x KL(p(y|x) ‖ p(y)), computed on `splits` consecutive slices (slice i is
[i·N//splits, (i+1)·N//splits), as in OpenAI's improved-gan code) and reported as the mean and
the population standard deviation (ddof=0) over slices. torchmetrics shuffles without a seed
and uses ddof=1; pass `shuffle_seed` for a seeded shuffle instead.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from gankit.errors import DataError
from gankit.metrics._common import as_features


class ISResult(NamedTuple):
    """Mean and standard deviation (ddof=0) of the per-split scores."""

    mean: float
    std: float
    splits: int


def inception_score(logits: Any, splits: int = 10, shuffle_seed: int | None = None) -> ISResult:
    """IS of class logits [N, C] (log-probabilities work too: softmax is shift-invariant)."""
    x = as_features(logits, "logits")
    n = x.shape[0]
    if splits < 1 or n < splits:
        raise DataError(f"inception_score: need at least splits={splits} samples, found {n}")
    if shuffle_seed is not None:
        x = x[torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed))]
    log_p = torch.log_softmax(x, dim=1)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = torch.logsumexp(part, dim=0) - math.log(part.shape[0])
        p = part.exp()
        terms = torch.where(p > 0, p * (part - log_marginal[None, :]), torch.zeros_like(p))
        kl = terms.sum(1).mean()
        scores.append(torch.exp(kl))
    t = torch.stack(scores)
    return ISResult(float(t.mean()), float(t.std(unbiased=False)), splits)
