"""Small helpers shared by the metric modules: input checks and float64 conversion."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gankit.errors import DataError

ArrayLike = torch.Tensor | np.ndarray


def as_features(x: Any, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A 2-D CPU tensor of `dtype` from a tensor or array of shape [N, d] (or [N, ...])."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name}: expected a tensor or numpy array, found {type(x).__name__}")
    x = x.detach().to("cpu", dtype)
    if x.ndim == 1:
        raise DataError(
            f"{name}: expected shape [N, d], found a 1-D array of shape {tuple(x.shape)}"
        )
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.shape[0] == 0:
        raise DataError(f"{name}: no samples (shape {tuple(x.shape)})")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise DataError(f"{name}: {bad} rows contain NaN or infinity")
    return x


def check_same_dim(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    """Both feature sets must have the same dimension."""
    if a.shape[1] != b.shape[1]:
        raise DataError(
            f"{names[0]} has {a.shape[1]} features per sample but {names[1]} has {b.shape[1]}; "
            "compute both with the same extractor"
        )


def pairwise_sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [len(a), len(b)], clamped at 0 (expanded form, one matmul)."""
    d = ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :]) - 2.0 * (a @ b.T)
    return d.clamp_min_(0.0)
