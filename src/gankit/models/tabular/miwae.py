"""MIWAE's networks and bound (Mattei & Frellsen, ICML 2019), implemented from the paper.

A VAE whose encoder reads the zero-filled row and whose decoder gives each column its own
distribution p(x_j | z) (Gaussian, or Student-t with learned degrees of freedom) with a learned
scale. Trained on incomplete rows with the importance-weighted bound restricted to the observed
entries:

    L_K(x_o) = log (1/K) sum_k  p(x_o | z_k) p(z_k) / q(z_k | x_o),   z_k ~ q(z | x_o),

where p(x_o | z) = prod_{j observed} p(x_j | z) (the decoder factorises over columns, so the
missing entries integrate out). Imputation uses the same weights: self-normalised importance
sampling gives E[x_m | x_o] ~ sum_l w_l E[x_m | z_l]; sampling-importance-resampling draws
z_l with probability w_l, then x_m ~ p(x_m | z_l), a draw from p(x_m | x_o).

`MIWAEModel` trains `MIWAENet` on the engine: one Adam step on -L_K of a minibatch of rows
(drawn by `gankit.models.tabular.gain.SeededRows`); the estimator is `gankit.tabular.miwae`.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from gankit.engine.model import Batches, GenerativeModel, update

LIKELIHOODS = ("gaussian", "student-t")
MIN_SCALE = 1e-3  # floor on a decoder scale: a point mass would make the bound unbounded
MIN_DF = 3.0  # Student-t degrees of freedom >= 3, so the mean and variance exist (the paper's)
LOG_2PI = math.log(2.0 * math.pi)

DecoderParams = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class LatentModel(Protocol):
    """What the bound needs: q(z | x) as (mean, std) and p(x | z) as (loc, scale, df or None)."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, z: torch.Tensor) -> DecoderParams: ...


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Two tanh hidden layers (the paper's encoder and decoder are 3-layer tanh MLPs)."""
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.Tanh(),
        nn.Linear(hidden, n_out),
    )


class MIWAENet(nn.Module):
    """Encoder q(z | x) = N(mu(x), diag sigma(x)^2) on the zero-filled row; decoder with a
    location, a scale (softplus + MIN_SCALE) and, for Student-t, df (softplus + MIN_DF) per
    column. Inputs are standardised columns (the estimator does that)."""

    def __init__(self, width: int, latent: int, hidden: int, likelihood: str) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.width, self.latent, self.likelihood = width, latent, likelihood
        heads = 3 if likelihood == "student-t" else 2
        self.encoder = _mlp(width, hidden, 2 * latent)
        self.decoder = _mlp(latent, hidden, heads * width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw = self.encoder(x).chunk(2, dim=-1)
        return mu, F.softplus(raw) + 1e-4

    def decode(self, z: torch.Tensor) -> DecoderParams:
        out = self.decoder(z)
        loc, raw_scale = out[..., : self.width], out[..., self.width : 2 * self.width]
        scale = F.softplus(raw_scale) + MIN_SCALE
        df = (
            F.softplus(out[..., 2 * self.width :]) + MIN_DF
            if self.likelihood == "student-t"
            else None
        )
        return loc, scale, df


class MIWAEModel(GenerativeModel):
    """`MIWAENet` as an engine model: network `net`, one Adam `miwae`; the step maximises the
    bound on a batch (`Batch.x`: standardised rows, zero where hidden; `extra["mask"]`: 1 where
    the entry is trained on). The latent samples come from torch's global generator, which the
    engine's checkpoints keep, so a resumed fit continues bit-identically."""

    ema_network = None

    def __init__(self, net: MIWAENet, *, n_importance: int, lr: float) -> None:
        super().__init__()
        self.networks = {"net": net}
        self.n_importance, self.lr = n_importance, lr

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"miwae": torch.optim.Adam(self.networks["net"].parameters(), lr=self.lr)}

    def training_step(
        self, batches: Batches, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        batch = batches.next()
        net: Any = self.live["net"]
        with self.autocast():
            bound = iwae_bound(net, batch.x, batch.extra["mask"], self.n_importance).mean()
        loss = -bound.float()
        update(loss, optimizers["miwae"])
        return {"loss_miwae": float(loss.detach()), "bound": float(bound.detach())}


def decoder_log_prob(params: DecoderParams, x: torch.Tensor) -> torch.Tensor:
    """log p(x_j | z) per entry: Gaussian, or Student-t when df is given."""
    loc, scale, df = params
    u = (x - loc) / scale
    if df is None:
        return -0.5 * (u**2 + LOG_2PI) - torch.log(scale)
    return (
        torch.lgamma((df + 1.0) / 2.0)
        - torch.lgamma(df / 2.0)
        - 0.5 * torch.log(df * math.pi)
        - torch.log(scale)
        - (df + 1.0) / 2.0 * torch.log1p(u**2 / df)
    )


def _normal_log_prob(z: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag std^2), summed over the last axis."""
    return (-0.5 * ((z - mu) / std) ** 2 - torch.log(std) - 0.5 * LOG_2PI).sum(-1)


def log_weights(
    model: LatentModel, x: torch.Tensor, mask: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, DecoderParams]:
    """K importance samples per row: log w_k = log p(x_o | z_k) + log p(z_k) - log q(z_k | x_o).

    `x`: (n, d) with missing entries set to 0 (the encoder's input), `mask`: 1 = observed.
    Returns log w (k, n), z (k, n, latent) and the decoder's parameters at z (each (k, n, d)).
    Samples come from torch's global generator (callers seed it)."""
    mu, std = model.encode(x * mask)
    z = mu + std * torch.randn((k, *mu.shape), dtype=mu.dtype, device=mu.device)
    params = model.decode(z)
    log_px = (decoder_log_prob(params, x) * mask).sum(-1)
    log_pz = (-0.5 * (z**2 + LOG_2PI)).sum(-1)
    log_qz = _normal_log_prob(z, mu, std)
    return log_px + log_pz - log_qz, z, params


def iwae_bound(model: LatentModel, x: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """The importance-weighted bound L_K per row (n,): log-mean-exp of the K log weights. With
    K = 1 it is a one-sample estimate of the ELBO; it rises to log p(x_o) as K grows."""
    logw, _, _ = log_weights(model, x, mask, k)
    return torch.logsumexp(logw, dim=0) - math.log(k)


def decoder_sample(params: DecoderParams) -> torch.Tensor:
    """One draw from p(x | z) per entry (global generator)."""
    loc, scale, df = params
    if df is None:
        return loc + scale * torch.randn_like(loc)
    return torch.distributions.StudentT(df, loc, scale).sample()


def snis_mean(
    model: LatentModel, x: torch.Tensor, mask: torch.Tensor, samples: int
) -> torch.Tensor:
    """E[x | x_o] by self-normalised importance sampling: sum_l w_l loc(z_l) (the decoder's
    mean; a Student-t with df >= 3 has one); observed entries kept."""
    logw, _, params = log_weights(model, x, mask, samples)
    w = torch.softmax(logw, dim=0).unsqueeze(-1)
    mean = (w * params[0]).sum(0)
    return mask * x + (1.0 - mask) * mean


def sir_draws(
    model: LatentModel, x: torch.Tensor, mask: torch.Tensor, samples: int, draws: int
) -> torch.Tensor:
    """`draws` completions per row by sampling-importance-resampling: z_l drawn with probability
    w_l among `samples` proposals, then x_m ~ p(x_m | z_l). Returns (draws, n, d)."""
    logw, _, params = log_weights(model, x, mask, samples)
    w = torch.softmax(logw, dim=0).T  # (n, samples)
    rows = torch.arange(x.shape[0])
    out = []
    for _ in range(draws):  # one at a time: the first draws do not depend on `draws`
        pick = torch.multinomial(w, 1).squeeze(1)
        chosen = tuple(None if p is None else p[pick, rows] for p in params)
        fill = decoder_sample(chosen)  # type: ignore[arg-type]
        out.append(mask * x + (1.0 - mask) * fill)
    return torch.stack(out)
