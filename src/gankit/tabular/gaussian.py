"""Gaussians and Gaussian mixtures fitted by EM on incomplete data, and their conditionals.

The generator of `GANImputer` does not start from zeros or noise as in GAIN: it refines the
conditional expectation E[x_missing | x_observed] of a Gaussian mixture fitted to the observed
entries (Little & Rubin, "Statistical Analysis with Missing Data", ch. 11; Ghahramani & Jordan
1994). That expectation is what linear chained-equation imputers (MICE with Bayesian ridge)
approximate by iterating; here it is exact for every missingness pattern, batched.

Everything is computed on the *missing* block through the precision matrix P = S^-1 (one
d x d inverse per component and iteration): for a row with missing set m and observed set o,

* E[x_m | x_o] = mu_m - P_mm^-1 P_mo (x_o - mu_o), Cov[x_m | x_o] = P_mm^-1;
* S_oo^-1 = P_oo - P_om P_mm^-1 P_mo, so the quadratic form of log N(x_o; mu_o, S_oo) is
  d'P d - h' P_mm^-1 h with d = x_o - mu_o padded with zeros and h = (P d)_m;
* log det S_oo = log det S + log det P_mm (Schur complement).

Rows are batched by gathering their missing indices into a (n, k, k) system, k the most
missing entries of any row, padded with the identity. With 20% missing that is a 64x smaller
Cholesky than the observed block (d x d per row, the previous formulation), which made fits on
wide tables minutes long (issue 15).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import invwishart


class MissingIndex:
    """Per row: the indices of its missing entries, padded to the longest row, and validity."""

    def __init__(self, mask: torch.Tensor) -> None:
        missing = mask < 0.5
        counts = missing.sum(1)
        self.n, self.d = mask.shape
        self.k = int(counts.max()) if self.n else 0
        order = torch.argsort((~missing).to(torch.int8), dim=1, stable=True)
        self.idx = order[:, : self.k]  # missing columns first, in column order
        self.valid = torch.arange(self.k).unsqueeze(0) < counts.unsqueeze(1)
        self.idx = torch.where(self.valid, self.idx, torch.zeros_like(self.idx))
        self.n_observed = mask.sum(1)
        # flat (row-major) positions of each row's (m, m) block in a d x d matrix
        self.flat = (self.idx.unsqueeze(2) * self.d + self.idx.unsqueeze(1)).reshape(-1)
        valid = self.valid.to(mask.dtype)
        self.pair = valid.unsqueeze(2) * valid.unsqueeze(1)
        self.eye = torch.diag_embed(1.0 - valid)

    def gather(self, v: torch.Tensor) -> torch.Tensor:
        """(n, d) -> (n, k): the missing entries of each row (0 in the padding)."""
        return torch.gather(v, 1, self.idx) * self.valid

    def scatter(self, v: torch.Tensor) -> torch.Tensor:
        """(n, k) -> (n, d): back to the columns (padding dropped)."""
        out = torch.zeros((self.n, self.d), dtype=v.dtype)
        return out.scatter_add(1, self.idx, v * self.valid)

    def block(self, precision: torch.Tensor) -> torch.Tensor:
        """P_mm per row, (n, k, k), identity in the padding."""
        pmm = precision.reshape(-1)[self.flat].view(self.n, self.k, self.k)
        return pmm * self.pair + self.eye

    def summed(self, blocks: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_i weights_i * blocks_i placed at (m_i, m_i): a (d, d) matrix."""
        vals = blocks * (self.pair * weights.view(-1, 1, 1))
        out = torch.zeros(self.d * self.d, dtype=blocks.dtype)
        return out.index_add(0, self.flat, vals.reshape(-1)).view(self.d, self.d)


def _component_terms(
    x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, index: MissingIndex
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: log N(x_o; mu_o, S_oo), the conditional mean (observed entries kept), and the
    Cholesky factor of P_mm (its inverse is the conditional covariance of the missing block)."""
    chol_s, _ = torch.linalg.cholesky_ex(sigma)
    precision = torch.cholesky_inverse(chol_s)
    logdet_s = 2.0 * torch.log(torch.diagonal(chol_s)).sum()
    centred = mask * (x - mu)
    h = centred @ precision  # P symmetric: rows of (P d)
    quad = (centred * h).sum(1)
    filled = mask * x + (1.0 - mask) * mu
    if index.k == 0:
        chol = torch.zeros((len(x), 0, 0), dtype=x.dtype)
        loglik = -0.5 * (quad + logdet_s + index.n_observed * math.log(2 * math.pi))
        return loglik, filled, chol
    chol, _ = torch.linalg.cholesky_ex(index.block(precision))
    hm = index.gather(h).unsqueeze(2)
    y = torch.cholesky_solve(hm, chol).squeeze(2)
    quad = quad - (hm.squeeze(2) * y).sum(1)
    logdet_oo = logdet_s + 2.0 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)
    loglik = -0.5 * (quad + logdet_oo + index.n_observed * math.log(2 * math.pi))
    filled = filled - index.scatter(y)
    return loglik, filled, chol


def _cond_cov_sum(chol: torch.Tensor, weights: torch.Tensor, index: MissingIndex) -> torch.Tensor:
    """sum_i weights_i Cov[x | x_o,i] as a (d, d) matrix (zero on observed rows/columns)."""
    if index.k == 0:
        return torch.zeros((index.d, index.d), dtype=chol.dtype)
    return index.summed(torch.cholesky_inverse(chol), weights)


def conditional_mean(
    x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """E[x | observed entries] for each row; observed entries are returned unchanged."""
    return _component_terms(x, mask, mu, sigma, MissingIndex(mask))[1]


def conditional_draw(
    x: torch.Tensor,
    mask: torch.Tensor,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    generator: torch.Generator | None = None,
    index: MissingIndex | None = None,
) -> torch.Tensor:
    """One draw from p(x_missing | x_observed) per row (observed entries unchanged).

    With P_mm = L L', L'^-1 z has covariance P_mm^-1, the conditional covariance."""
    index = index or MissingIndex(mask)
    _, mean, chol = _component_terms(x, mask, mu, sigma, index)
    noise = torch.randn((len(x), index.k, 1), generator=generator, dtype=x.dtype)
    if index.k == 0:
        return mean
    draw = torch.linalg.solve_triangular(chol.transpose(1, 2), noise, upper=True).squeeze(2)
    return mean + index.scatter(draw)


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
    """
    n, d = x.shape
    eye = torch.eye(d, dtype=x.dtype)
    if init is None:
        counts = mask.sum(0).clamp_min(1.0)
        mu = (mask * x).sum(0) / counts
        sigma = torch.diag((mask * (x - mu) ** 2).sum(0) / counts) + ridge * eye
    else:
        mu, sigma = init
    index = MissingIndex(mask)
    ones = torch.ones(n, dtype=x.dtype)
    for _ in range(iters):
        _, filled, chol = _component_terms(x, mask, mu, sigma, index)
        new_mu = filled.mean(0)
        dev = filled - new_mu
        new_sigma = dev.T @ dev / n + _cond_cov_sum(chol, ones, index) / n + ridge * eye
        change = ((new_sigma - sigma).abs().max() / sigma.diagonal().max()).item()
        mu, sigma = new_mu, new_sigma
        if change < tol:
            break
    return mu, sigma


# --------------------------------------------------------------------- mixture of Gaussians
def mixture_posterior(
    x: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    mus: torch.Tensor,
    sigmas: torch.Tensor,
    index: MissingIndex | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Responsibilities (n, K) given the observed entries, per-component fills (K, n, d), and
    the Cholesky factors of each component's P_mm."""
    index = index or MissingIndex(mask)
    terms = [_component_terms(x, mask, mus[k], sigmas[k], index) for k in range(len(weights))]
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
    init: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights (K,), means (K, d), covariances (K, d, d) of a Gaussian mixture by EM on the
    observed entries (Ghahramani & Jordan 1994). Started from k-means++ seeds on the
    mean-filled rows (or `init`); `ridge` is added to every covariance's diagonal at every
    M-step."""
    n, d = x.shape
    eye = torch.eye(d, dtype=x.dtype)
    if init is None:
        counts = mask.sum(0).clamp_min(1.0)
        col_mean = (mask * x).sum(0) / counts
        filled = mask * x + (1.0 - mask) * col_mean
        base_var = ((mask * (x - col_mean) ** 2).sum(0) / counts).clamp_min(1e-6)
        mus = _kmeanspp(filled, k, seed)
        sigmas = torch.stack([torch.diag(base_var) + ridge * eye for _ in range(k)])
        weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
    else:
        weights, mus, sigmas = init
    index = MissingIndex(mask)
    prev = -math.inf
    for _ in range(iters):
        terms = [_component_terms(x, mask, mus[j], sigmas[j], index) for j in range(k)]
        logp = torch.stack([t[0] for t in terms], 1) + torch.log(weights)
        total = torch.logsumexp(logp, 1).mean().item()
        resp = torch.softmax(logp, 1)
        nk = resp.sum(0).clamp_min(1e-8)
        weights = (nk / n).clamp_min(1e-8)
        new_mus, new_sigmas = [], []
        for j, (_, fill, chol) in enumerate(terms):
            r = resp[:, j]
            mu = (r.unsqueeze(1) * fill).sum(0) / nk[j]
            dev = fill - mu
            scatter = (r.unsqueeze(1) * dev).T @ dev / nk[j]
            cond = _cond_cov_sum(chol, r, index) / nk[j]
            new_mus.append(mu)
            new_sigmas.append(scatter + cond + ridge * eye)
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


# ------------------------------------------------------------ self-masking missingness (MNAR)
# Under self-masking an entry's chance to be missing depends on its own value:
# P(m_j = 1 | x) = sigmoid(a_j x_j + b_j) (m = 1: missing). The likelihood of a row is
# p(x_o, m) = integral p(x_o, x_m) prod_j P(m_j | x_j) dx_m, so the distribution of the missing
# block given the observed one is the mixture's conditional *tilted* by the mechanism:
# p(x_m | x_o, m) ~ p(x_m | x_o) prod_{j missing} sigmoid(a_j x_j + b_j). As in not-MIWAE
# (Ipsen, Mattei & Frellsen, ICLR 2021) the mechanism is modelled jointly with the data; here
# the data model is the Gaussian mixture and the fit a Monte-Carlo EM: draw the missing block
# from the mixture's conditional, weight each draw by the mechanism (self-normalised importance
# sampling), resample, refit the per-column logistic mechanism and the mixture on the completed
# rows, repeat.


TILT_CHUNK = 2048  # rows per batch of `tilted_samples`
# Logistic slope penalty per column variance, 0.5 * SLOPE_L2 * var_j * a_j^2: a weak prior (sd 10)
# on the slope per standard deviation. A fixed l2 = 1 on slopes of [0, 1]-scaled columns shrank
# them 10-30% on tables of 150-600 rows.
SLOPE_L2 = 0.01


def self_masking_logweight(
    samples: torch.Tensor, mask: torch.Tensor, mechanism: torch.Tensor
) -> torch.Tensor:
    """log prod_{j missing} sigmoid(a_j x_j + b_j) per draw (S, n); mechanism = [a; b] (2, d)."""
    logits = samples * mechanism[0] + mechanism[1]
    return ((1.0 - mask) * torch.nn.functional.logsigmoid(logits)).sum(-1)


def tilted_samples(
    x: torch.Tensor,
    mask: torch.Tensor,
    mixture: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    mechanism: torch.Tensor,
    n_samples: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_samples` importance draws per row from the tilted conditional, (S, n, d), and their
    normalised weights (S, n).

    Proposal: a component by its responsibility, then its conditional Gaussian N(mu, C)
    moved to the mode y* of the tilted conditional N(x; mu, C) prod sigmoid(a_j x_j + b_j)
    (`_tilted_mode`): N(y*, C). The target is log-concave with more curvature than C^-1, so the
    proposal is wider than it and the weights are bounded, largest at the mode. Two earlier
    proposals failed: the untilted conditional (slopes 35% low: the few draws in the upper
    tail carried all the weight) and the conditional shifted by the tilt linearised at the
    untilted mean, which overshot for steep slopes: the effective sample size fell to ~1 per
    row and the Monte-Carlo EM diverged after ~30 iterations. With s = y* - mu and h = C^-1 s
    the weight of a draw x from component k is prod sigmoid(a_j x_j + b_j) * N(x; mu, C) /
    N(x; y*, C) = prod sigmoid(...) * exp(-h'(x - mu) + h's / 2) (valid on the joint space of
    component and value)."""
    if len(x) > TILT_CHUNK:  # bounded memory: (S, rows, k, k) triangular systems per chunk
        parts = [
            tilted_samples(
                x[i : i + TILT_CHUNK],
                mask[i : i + TILT_CHUNK],
                mixture,
                mechanism,
                n_samples,
                generator,
            )
            for i in range(0, len(x), TILT_CHUNK)
        ]
        return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)
    index = MissingIndex(mask)
    resp, fills, chols = mixture_posterior(x, mask, *mixture, index)
    n = len(x)
    pick = torch.multinomial(resp, n_samples, replacement=True, generator=generator).T
    base = fills[pick, torch.arange(n)]  # (S, n, d): the chosen component's conditional mean
    if index.k == 0:
        return base, torch.full((n_samples, n), 1.0 / n_samples, dtype=x.dtype)
    noise = torch.randn((n_samples, n, index.k, 1), generator=generator, dtype=x.dtype)
    missing = torch.zeros((n_samples, n, index.k), dtype=x.dtype)
    correction = torch.zeros((n_samples, n), dtype=x.dtype)
    valid = index.valid.to(x.dtype)
    slope, intercept = mechanism[0][index.idx] * valid, mechanism[1][index.idx]
    for k, chol in enumerate(chols):
        chosen = pick == k
        if not chosen.any():
            continue
        shift = _tilted_mode(index.gather(fills[k]), chol, slope, intercept, valid)
        g = (chol @ (chol.transpose(1, 2) @ shift.unsqueeze(2))).squeeze(2)  # P_mm shift
        eye = torch.eye(index.k, dtype=x.dtype).expand_as(chol)
        root = torch.linalg.solve_triangular(chol.transpose(1, 2), eye, upper=True)  # L'^-1
        eps = torch.einsum("nij,snj->sni", root, noise.squeeze(3)) + shift
        corr = -(g * eps).sum(2) + 0.5 * (g * shift).sum(1)
        missing = torch.where(chosen.unsqueeze(2), eps, missing)
        correction = torch.where(chosen, corr, correction)
    idx = index.idx.expand(n_samples, n, index.k)
    draws = base.scatter_add(2, idx, missing * index.valid)
    logw = self_masking_logweight(draws, mask, mechanism) + correction
    return draws, torch.softmax(logw, dim=0)


def _tilted_mode(
    mean: torch.Tensor,
    chol: torch.Tensor,
    slope: torch.Tensor,
    intercept: torch.Tensor,
    valid: torch.Tensor,
    steps: int = 12,
) -> torch.Tensor:
    """Per row, y - mean at the mode y of the tilted conditional N(y; mean, P_mm^-1) *
    prod sigmoid(a y + b) (n, k): damped Newton on a strictly concave function (the Gaussian's
    log-density plus log-sigmoids), each step halved until the objective does not fall."""
    chol_t = chol.transpose(1, 2)

    def objective(y: torch.Tensor) -> torch.Tensor:
        quad = (chol_t @ (y - mean).unsqueeze(2)).squeeze(2)
        tilt = torch.nn.functional.logsigmoid(slope * y + intercept) * valid
        return -0.5 * (quad**2).sum(1) + tilt.sum(1)

    y = mean.clone()
    current = objective(y)
    for _ in range(steps):
        s = torch.sigmoid(slope * y + intercept)
        grad = slope * (1.0 - s) * valid - (chol @ (chol_t @ (y - mean).unsqueeze(2))).squeeze(2)
        hess = chol @ chol_t + torch.diag_embed(slope**2 * s * (1.0 - s) * valid)
        step = torch.linalg.solve(hess, grad.unsqueeze(2)).squeeze(2)
        scale = torch.ones(len(y), 1, dtype=y.dtype)
        for _ in range(20):
            trial = objective(y + scale * step)
            worse = trial < current - 1e-12 * current.abs()
            if not worse.any():
                break
            scale = torch.where(worse.unsqueeze(1), scale / 2, scale)
        y = y + scale * step
        current = objective(y)
        if step.abs().max() < 1e-8:
            break
    return y - mean


def tilted_conditional_mean(
    x: torch.Tensor,
    mask: torch.Tensor,
    mixture: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    mechanism: torch.Tensor,
    n_samples: int = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """E[x | observed, mask] under the mixture and the self-masking mechanism (self-normalised
    importance sampling, `tilted_samples`)."""
    draws, w = tilted_samples(x, mask, mixture, mechanism, n_samples, generator)
    return (w.unsqueeze(2) * draws).sum(0)


def tilted_conditional_draw(
    x: torch.Tensor,
    mask: torch.Tensor,
    mixture: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    mechanism: torch.Tensor,
    n_samples: int = 64,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw per row from the tilted conditional (sampling-importance-resampling)."""
    draws, w = tilted_samples(x, mask, mixture, mechanism, n_samples, generator)
    pick = torch.multinomial(w.T, 1, generator=generator).squeeze(1)
    return draws[pick, torch.arange(len(x))]


def fit_logistic_columns(
    values: torch.Tensor, labels: torch.Tensor, init: torch.Tensor, l2: float = 1.0, steps: int = 8
) -> torch.Tensor:
    """Per column j, the logistic regression labels_j ~ sigmoid(a_j values_j + b_j) by damped
    Newton steps (a 2 x 2 system per column in closed form; a step is halved until the
    penalised loss does not rise: plain Newton diverged on a nearly separable column of
    breast under MNAR); `l2` shrinks the slopes a."""

    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = values * a + b
        nll = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels, reduction="none"
        ).sum(0)
        return nll + 0.5 * l2 * a**2

    a, b = init[0].clone(), init[1].clone()
    current = loss(a, b)
    for _ in range(steps):
        p = torch.sigmoid(values * a + b)
        r, w = p - labels, (p * (1.0 - p)).clamp_min(1e-9)
        ga, gb = (r * values).sum(0) + l2 * a, r.sum(0)
        haa, hab, hbb = (w * values**2).sum(0) + l2, (w * values).sum(0), w.sum(0)
        det = (haa * hbb - hab**2).clamp_min(1e-12)
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        scale = torch.ones_like(a)
        for _ in range(30):
            trial = loss(a - scale * da, b - scale * db)
            worse = trial > current + 1e-9 * current.abs()
            if not worse.any():
                break
            scale = torch.where(worse, scale / 2, scale)
        a, b = a - scale * da, b - scale * db
        current = loss(a, b)
    return torch.stack([a, b])


def fit_self_masking(
    x: torch.Tensor,
    mask: torch.Tensor,
    mixture: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ridge: float,
    iters: int = 20,
    proposals: int = 32,
    keep: int = 4,
    seed: int = 0,
    polish_ridge: float | None = None,
    polish_iters: int = 5,
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Monte-Carlo EM for a Gaussian mixture under self-masking missingness.

    Starts from the MAR fit `mixture` and a = 0 (missingness unrelated to the value). Each
    iteration draws `proposals` completions per row from the mixture's conditional, resamples
    `keep` of them by their self-masking weights, refits the mechanism (per-column logistic
    regression of the mask on the completed values) and the mixture (a few EM steps on the
    completed rows, warm-started). The last iteration keeps 4x more draws to damp its noise.
    With `polish_ridge`, `polish_iters` more iterations refit only the mixture, with that ridge
    and the mechanism frozen. Returns the mixture and the mechanism [a; b], (2, d)."""
    gen = torch.Generator().manual_seed(seed)
    n, d = x.shape
    missing = 1.0 - mask
    rate = missing.mean(0).clamp(1e-3, 1.0 - 1e-3)
    mechanism = torch.stack([torch.zeros(d, dtype=x.dtype), torch.log(rate / (1.0 - rate))])
    k = len(mixture[0])
    rows = torch.arange(n)
    for it in range(iters):
        n_keep = keep * (4 if it == iters - 1 else 1)
        draws, w = tilted_samples(x, mask, mixture, mechanism, proposals, gen)
        pick = torch.multinomial(w.T, n_keep, replacement=True, generator=gen).T
        completed = draws[pick, rows].reshape(-1, d)
        labels = missing.repeat(n_keep, 1)
        mechanism = fit_logistic_columns(
            completed, labels, mechanism, l2=SLOPE_L2 * completed.var(0)
        )
        ones = torch.ones_like(completed)
        mixture = fit_mixture_em(completed, ones, k, ridge=ridge, iters=5, init=mixture)
    for _ in range(polish_iters if polish_ridge is not None else 0):
        draws, w = tilted_samples(x, mask, mixture, mechanism, proposals, gen)
        pick = torch.multinomial(w.T, 4 * keep, replacement=True, generator=gen).T
        completed = draws[pick, rows].reshape(-1, d)
        ones = torch.ones_like(completed)
        mixture = fit_mixture_em(completed, ones, k, ridge=polish_ridge, iters=5, init=mixture)
    return mixture, mechanism
