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

import math

import numpy as np
import torch
from scipy.stats import invwishart


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


# --------------------------------------------------------------------- mixture of Gaussians
def _component_terms(
    x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: log N(x_o; mu_o, S_oo), the conditional mean, and Q = S_oo^-1 padded with 0."""
    chol, _ = torch.linalg.cholesky_ex(_masked_system(sigma, mask))
    q = torch.cholesky_inverse(chol) * (mask.unsqueeze(2) * mask.unsqueeze(1))
    centred = mask * (x - mu)
    y = (q @ centred.unsqueeze(2)).squeeze(2)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)
    loglik = -0.5 * ((centred * y).sum(1) + logdet + mask.sum(1) * math.log(2 * math.pi))
    filled = mask * x + (1.0 - mask) * (mu + y @ sigma)
    return loglik, filled, q


def mixture_posterior(
    x: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    mus: torch.Tensor,
    sigmas: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Responsibilities (n, K) given the observed entries, per-component fills (K, n, d), Qs."""
    terms = [_component_terms(x, mask, mus[k], sigmas[k]) for k in range(len(weights))]
    logp = torch.stack([t[0] for t in terms], 1) + torch.log(weights)
    resp = torch.softmax(logp, dim=1)
    return resp, torch.stack([t[1] for t in terms]), [t[2] for t in terms]


def mixture_conditional_mean(
    x: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    mus: torch.Tensor,
    sigmas: torch.Tensor,
) -> torch.Tensor:
    """E[x | observed] under the mixture: responsibility-weighted component means."""
    resp, fills, _ = mixture_posterior(x, mask, weights, mus, sigmas)
    return (resp.T.unsqueeze(2) * fills).sum(0)


def mixture_conditional_draw(
    x: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    mus: torch.Tensor,
    sigmas: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw per row: a component by its responsibility, then its conditional Gaussian."""
    resp, _, _ = mixture_posterior(x, mask, weights, mus, sigmas)
    pick = torch.multinomial(resp, 1, generator=generator).squeeze(1)
    out = torch.empty_like(x)
    for k in range(len(weights)):
        rows = pick == k
        if rows.any():
            out[rows] = conditional_draw(x[rows], mask[rows], mus[k], sigmas[k], generator)
    return out


def fit_mixture_em(
    x: torch.Tensor,
    mask: torch.Tensor,
    k: int,
    ridge: float = 1e-3,
    iters: int = 30,
    seed: int = 0,
    tol: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights (K,), means (K, d), covariances (K, d, d) of a Gaussian mixture by EM on the
    observed entries (Ghahramani & Jordan 1994). Started from k-means++ seeds on the
    mean-filled rows; `ridge` is added to every covariance's diagonal at every M-step."""
    n, d = x.shape
    counts = mask.sum(0).clamp_min(1.0)
    col_mean = (mask * x).sum(0) / counts
    filled = mask * x + (1.0 - mask) * col_mean
    base_var = ((mask * (x - col_mean) ** 2).sum(0) / counts).clamp_min(1e-6)
    eye = torch.eye(d, dtype=x.dtype)
    mus = _kmeanspp(filled, k, seed)
    sigmas = torch.stack([torch.diag(base_var) + ridge * eye for _ in range(k)])
    weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
    prev = -math.inf
    for _ in range(iters):
        terms = [_component_terms(x, mask, mus[j], sigmas[j]) for j in range(k)]
        logp = torch.stack([t[0] for t in terms], 1) + torch.log(weights)
        total = torch.logsumexp(logp, 1).mean().item()
        resp = torch.softmax(logp, 1)
        nk = resp.sum(0).clamp_min(1e-8)
        weights = (nk / n).clamp_min(1e-8)
        new_mus, new_sigmas = [], []
        for j, (_, fill, q) in enumerate(terms):
            r = resp[:, j]
            mu = (r.unsqueeze(1) * fill).sum(0) / nk[j]
            dev = fill - mu
            q_mean = (r.view(-1, 1, 1) * q).sum(0) / nk[j]
            s = sigmas[j]
            scatter = (r.unsqueeze(1) * dev).T @ dev / nk[j]
            new_mus.append(mu)
            new_sigmas.append(scatter + s - s @ q_mean @ s + ridge * eye)
        mus, sigmas = torch.stack(new_mus), torch.stack(new_sigmas)
        if abs(total - prev) < tol * max(1.0, abs(total)):
            break
        prev = total
    return weights, mus, sigmas


def _kmeanspp(points: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) followed by a few Lloyd iterations."""
    gen = torch.Generator().manual_seed(seed)
    centres = [points[torch.randint(len(points), (1,), generator=gen)].squeeze(0)]
    for _ in range(1, k):
        dist = torch.cdist(points, torch.stack(centres)).min(1).values ** 2
        probs = dist / dist.sum() if dist.sum() > 0 else torch.full_like(dist, 1 / len(dist))
        centres.append(points[torch.multinomial(probs, 1, generator=gen)].squeeze(0))
    centres_t = torch.stack(centres)
    for _ in range(10):
        label = torch.cdist(points, centres_t).argmin(1)
        for j in range(k):
            if (label == j).any():
                centres_t[j] = points[label == j].mean(0)
    return centres_t


def draw_mixture_parameters(
    weights: torch.Tensor,
    mus: torch.Tensor,
    sigmas: torch.Tensor,
    n_rows: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One draw of the mixture's parameters from their approximate posterior.

    Proper multiple imputation (Rubin 1987; Schafer 1997, ch. 5) draws the parameters before
    each completion, so that the spread between completed tables carries the uncertainty of the
    fit, not only the noise of the conditional distribution. Per component, with
    n_k = weight * `n_rows` effective rows: Sigma ~ Inverse-Wishart(n_k, n_k Sigma_hat),
    mu ~ N(mu_hat, Sigma / n_k), weights ~ Dirichlet(n_k). Under a flat prior this is the
    posterior of a complete-data Gaussian; for EM estimates on incomplete data the caller passes
    the rows times the observed share, which widens it (an approximation, checked by the
    calibration test and the benchmark's coverage).
    """
    k, d = mus.shape
    counts = np.maximum(weights.double().numpy() * n_rows, d + 2.0)
    new_w = rng.dirichlet(counts)
    new_mus, new_sigmas = [], []
    for j in range(k):
        scale = counts[j] * sigmas[j].double().numpy()
        sigma = np.atleast_2d(invwishart.rvs(df=counts[j], scale=scale, random_state=rng))
        sigma = 0.5 * (sigma + sigma.T)
        new_mus.append(rng.multivariate_normal(mus[j].double().numpy(), sigma / counts[j]))
        new_sigmas.append(sigma)
    dtype = mus.dtype
    return (
        torch.tensor(new_w, dtype=dtype),
        torch.tensor(np.stack(new_mus), dtype=dtype),
        torch.tensor(np.stack(new_sigmas), dtype=dtype),
    )
