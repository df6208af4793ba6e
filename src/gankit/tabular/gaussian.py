"""A multivariate Gaussian fitted by EM on incomplete data, and its conditional means.

The generator of `GANImputer` does not start from zeros or noise as in GAIN: it refines the
conditional expectation E[x_missing | x_observed] of a Gaussian fitted to the observed entries
(Little & Rubin, "Statistical Analysis with Missing Data", ch. 11). That expectation is what
linear chained-equation imputers (MICE with Bayesian ridge) approximate by iterating; here it is
exact for every missingness pattern, batched, in one linear solve per row.

Trick used throughout: for a row with observation mask m (1 = observed), the matrix
A = diag(m) S diag(m) + diag(1 - m) equals S on the observed block and the identity on the
missing block, so one batched `solve(A, m * (x - mu))` gives S_oo^-1 (x_o - mu_o) padded with
zeros, and mu + S @ y is the observed values on observed entries and the conditional mean on
missing ones.
"""

from __future__ import annotations

import torch


def _masked_system(sigma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row: sigma on the observed block, identity on the missing block; shape (n, d, d)."""
    outer = mask.unsqueeze(2) * mask.unsqueeze(1)
    eye = torch.diag_embed(1.0 - mask)
    return sigma.unsqueeze(0) * outer + eye


def conditional_mean(
    x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """E[x | observed entries] for each row; observed entries are returned unchanged."""
    rhs = (mask * (x - mu)).unsqueeze(2)
    y = torch.linalg.solve(_masked_system(sigma, mask), rhs).squeeze(2)
    filled = mu + y @ sigma
    return mask * x + (1.0 - mask) * filled


def conditional_draw(
    x: torch.Tensor,
    mask: torch.Tensor,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw from p(x_missing | x_observed) per row (observed entries unchanged)."""
    mean = conditional_mean(x, mask, mu, sigma)
    cov = _conditional_cov(mask, sigma)
    cov = cov + 1e-6 * torch.eye(cov.shape[-1], dtype=cov.dtype)
    evals, evecs = torch.linalg.eigh(cov)
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    draw = (evecs * evals.clamp_min(0.0).sqrt().unsqueeze(1)) @ noise.unsqueeze(2)
    return mean + (1.0 - mask) * draw.squeeze(2)


def _conditional_cov(mask: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Cov[x | observed] per row: S_mm - S_mo S_oo^-1 S_om on the missing block, 0 elsewhere."""
    a_inv = torch.linalg.inv(_masked_system(sigma, mask))
    a_inv = a_inv * (mask.unsqueeze(2) * mask.unsqueeze(1))
    return sigma.unsqueeze(0) - sigma @ a_inv @ sigma


def fit_gaussian_em(
    x: torch.Tensor,
    mask: torch.Tensor,
    iters: int = 50,
    ridge: float = 1e-3,
    tol: float = 1e-5,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of a Gaussian by EM on the observed entries.

    `ridge` is added to the diagonal of the covariance at every M-step: it keeps the matrix
    invertible when columns are collinear (one-hot groups, derived features) and shrinks the
    regression coefficients, as ridge regression does. `init` warm-starts from an earlier fit.
    One batched inverse per iteration gives both E-step quantities: the conditional means and
    the average conditional covariance S - S mean(Q_i) S, where Q_i is S_oo^-1 padded with zeros.
    """
    n, d = x.shape
    eye = torch.eye(d, dtype=x.dtype)
    if init is None:
        counts = mask.sum(0).clamp_min(1.0)
        mu = (mask * x).sum(0) / counts
        sigma = torch.diag((mask * (x - mu) ** 2).sum(0) / counts) + ridge * eye
    else:
        mu, sigma = init
    outer = mask.unsqueeze(2) * mask.unsqueeze(1)
    for _ in range(iters):
        q = torch.linalg.inv(_masked_system(sigma, mask)) * outer
        y = (q @ (mask * (x - mu)).unsqueeze(2)).squeeze(2)
        filled = mask * x + (1.0 - mask) * (mu + y @ sigma)
        cov = sigma - sigma @ q.mean(0) @ sigma
        new_mu = filled.mean(0)
        dev = filled - new_mu
        new_sigma = dev.T @ dev / n + cov + ridge * eye
        change = ((new_sigma - sigma).abs().max() / sigma.diagonal().max()).item()
        mu, sigma = new_mu, new_sigma
        if change < tol:
            break
    return mu, sigma
