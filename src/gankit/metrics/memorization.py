"""Memorisation check: is each generated sample a copy of a training example?

Goodfellow et al. (2014, Figure 2) show, beside generated samples, their nearest training
example. We compute that neighbour for every generated sample and compare the distribution of
these nearest-neighbour distances with the same distances for held-out real data: a generator
that copies its training set produces distances well below those of genuinely new real samples.
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.metrics._common import as_features, check_same_dim, pairwise_sq_dists

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75)


def nearest_neighbours(
    queries: Any, reference: Any, block: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Index [M] and Euclidean distance [M] of each query's nearest reference row (batched)."""
    q = as_features(queries, "queries")
    r = as_features(reference, "reference")
    check_same_dim(q, r, ("queries", "reference"))
    idx = torch.empty(q.shape[0], dtype=torch.long)
    dist = torch.empty(q.shape[0], dtype=torch.float64)
    for s in range(0, q.shape[0], block):
        d2, i = pairwise_sq_dists(q[s : s + block], r).min(1)
        idx[s : s + block] = i
        dist[s : s + block] = d2.sqrt()
    return idx, dist


def memorization(*, train: Any, fake: Any, heldout: Any) -> dict[str, Any]:
    """Nearest-training-example distances of fake vs held-out real samples.

    `copy_fraction` is the share of fake samples closer to the training set than the closest
    1 % of held-out real samples are; about 0.01 when the generator does not copy, near 1 when it
    does. `distance_ratio` is median(fake) / median(held-out).
    """
    _, fake_d = nearest_neighbours(fake, train)
    _, held_d = nearest_neighbours(heldout, train)
    q = torch.tensor(QUANTILES, dtype=torch.float64)
    fake_q = torch.quantile(fake_d, q)
    held_q = torch.quantile(held_d, q)
    return {
        "copy_fraction": float((fake_d < held_q[0]).double().mean()),
        "distance_ratio": float(fake_q[3] / held_q[3]) if held_q[3] > 0 else float("nan"),
        "fake_quantiles": dict(zip(map(str, QUANTILES), fake_q.tolist(), strict=True)),
        "heldout_quantiles": dict(zip(map(str, QUANTILES), held_q.tolist(), strict=True)),
        "exact_copies": int((fake_d < 1e-6).sum()),
    }
