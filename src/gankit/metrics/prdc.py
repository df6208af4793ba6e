"""Improved precision & recall (Kynkäänniemi 2019), density & coverage (Naeem et al. 2020).

Each set's manifold is the union of balls around its samples, the radius of a ball being the
distance to the sample's k-th nearest neighbour in its own set (itself excluded).

- precision: fraction of fake samples inside the real manifold (k = 3, `<=`);
- recall: fraction of real samples inside the fake manifold (k = 3, `<=`);
- density: (1 / kM) Σ_fake #{real balls containing it} (k = 5, strict `<`);
- coverage: fraction of real samples whose own ball holds at least one fake sample (k = 5, `<`).

`real=` and `fake=` are keyword-only so they cannot be swapped (torch-fidelity had them swapped
until 2026). Distances are computed in row blocks, so memory is O(block · N), never N².
Squared distances within a relative `TIE` (1e-9) of a radius count as ties: the expanded form
‖a‖² + ‖b‖² − 2aᵀb is not bitwise symmetric, and without this slack duplicated points would be
counted inconsistently (identical sets must give exactly 1, 1, 1, 1).
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.errors import DataError
from gankit.metrics._common import as_features, check_same_dim, pairwise_sq_dists

TIE = 1e-9


def kth_neighbour_sq_radii(x: torch.Tensor, k: int, block: int = 1024) -> torch.Tensor:
    """Squared distance from each row of x to its k-th nearest other row, in blocks."""
    if x.shape[0] <= k:
        raise DataError(f"need more than k={k} samples for k-NN radii, found {x.shape[0]}")
    out = torch.empty(x.shape[0], dtype=x.dtype)
    for s in range(0, x.shape[0], block):
        d = pairwise_sq_dists(x[s : s + block], x)
        rows = torch.arange(d.shape[0])
        d[rows, rows + s] = 0.0  # the point itself, exactly 0 despite round-off
        out[s : s + block] = torch.topk(d, k + 1, dim=1, largest=False).values[:, k]
    return out


def _scan(
    real: torch.Tensor,
    fake: torch.Tensor,
    r_real: torch.Tensor,
    r_fake: torch.Tensor | None,
    block: int,
) -> dict[str, torch.Tensor]:
    """One pass over fake-vs-real distance blocks gathering every count the metrics need."""
    in_real = torch.zeros(fake.shape[0], dtype=torch.bool)
    in_fake = torch.zeros(real.shape[0], dtype=torch.bool)
    density_count = torch.zeros((), dtype=torch.float64)
    covered = torch.zeros(real.shape[0], dtype=torch.bool)
    real_hi, real_lo = r_real * (1 + TIE), r_real * (1 - TIE)
    fake_hi = None if r_fake is None else r_fake * (1 + TIE)
    for s in range(0, fake.shape[0], block):
        d = pairwise_sq_dists(fake[s : s + block], real)  # [b, N_real]
        in_real[s : s + block] = (d <= real_hi[None, :]).any(1)
        strict = d < real_lo[None, :]
        density_count += strict.sum()
        covered |= strict.any(0)
        if fake_hi is not None:
            in_fake |= (d <= fake_hi[s : s + block, None]).any(0)
    return {"in_real": in_real, "in_fake": in_fake, "density": density_count, "covered": covered}


def _counts(
    real: Any, fake: Any, k: int, block: int, dtype: torch.dtype, fake_balls: bool
) -> tuple[dict[str, torch.Tensor], int]:
    """k-NN radii (of the real set, and of the fake set if `fake_balls`), the scan, n_fake."""
    x = as_features(real, "real", dtype)
    y = as_features(fake, "fake", dtype)
    check_same_dim(x, y, ("real", "fake"))
    r_real = kth_neighbour_sq_radii(x, k, block)
    r_fake = kth_neighbour_sq_radii(y, k, block) if fake_balls else None
    return _scan(x, y, r_real, r_fake, block), y.shape[0]


def _pr_values(counts: dict[str, torch.Tensor]) -> dict[str, float]:
    return {
        "precision": float(counts["in_real"].double().mean()),
        "recall": float(counts["in_fake"].double().mean()),
    }


def _dc_values(counts: dict[str, torch.Tensor], k: int, n_fake: int) -> dict[str, float]:
    return {
        "density": float(counts["density"] / (k * n_fake)),
        "coverage": float(counts["covered"].double().mean()),
    }


def precision_recall(
    *, real: Any, fake: Any, k: int = 3, block: int = 1024, dtype: torch.dtype = torch.float64
) -> dict[str, float]:
    """Improved precision and recall with k-NN balls (k = 3 as in the paper)."""
    counts, _ = _counts(real, fake, k, block, dtype, fake_balls=True)
    return _pr_values(counts)


def density_coverage(
    *, real: Any, fake: Any, k: int = 5, block: int = 1024, dtype: torch.dtype = torch.float64
) -> dict[str, float]:
    """Density and coverage with k-NN balls around real samples only (k = 5 as in the paper)."""
    counts, n_fake = _counts(real, fake, k, block, dtype, fake_balls=False)
    return _dc_values(counts, k, n_fake)


def prdc(
    *, real: Any, fake: Any, k: int = 5, block: int = 1024, dtype: torch.dtype = torch.float64
) -> dict[str, float]:
    """All four with one k, as `prdc.compute_prdc` returns them (one pass over the data)."""
    counts, n_fake = _counts(real, fake, k, block, dtype, fake_balls=True)
    return {**_pr_values(counts), **_dc_values(counts, k, n_fake)}
