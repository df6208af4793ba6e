"""TVAE (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN", section 4.3), from the
paper: a VAE on mode-normalised rows (the encoding CTGAN uses, `gankit.tabular.encoders`).

The encoder is an MLP giving q(z|r) = N(mu, diag(sigma^2)); the decoder an MLP whose output is
read span by span: for a continuous column the scalar alpha ~ N(tanh(out), delta^2) with one
learned delta per column, and its mode (a one-hot) ~ softmax(out); a discrete column ~
softmax(out). The step maximises the ELBO (analytic KL, reparameterised z); the reconstruction
term can be weighted (`recon_weight`; 2 is the TVAE reference setting, 1 the plain ELBO).
Rows are drawn uniformly, epoch by epoch, by `Rows`; sampling and the estimator live in
`gankit.tabular.tvae`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gankit.engine.model import Batch, Batches, GenerativeModel, update
from gankit.models.vae import gaussian_kl
from gankit.nets.mlp import mlp
from gankit.nets.tabular import Span

LOG_DELTA_RANGE = (math.log(0.01), 0.0)  # the learned std of alpha stays in [0.01, 1]
LOG_2PI = math.log(2 * math.pi)


class RowEncoder(nn.Module):
    """Encoded row -> MLP (ReLU) -> (mu, logvar)."""

    def __init__(self, width: int, hidden: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        self.net = mlp(width, hidden, 2 * latent_dim, "relu")

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(rows).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)


class RowDecoder(nn.Module):
    """z -> MLP (ReLU, the encoder's widths reversed) -> raw span outputs; `log_delta` holds
    the learned log-std of each continuous column's alpha."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], spans: list[Span]) -> None:
        super().__init__()
        width = sum(s.width for s in spans)
        self.net = mlp(latent_dim, list(hidden)[::-1], width, "relu")
        n_alpha = sum(s.activation == "tanh" for s in spans)
        self.log_delta = nn.Parameter(torch.full((n_alpha,), math.log(0.1)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def delta(self) -> torch.Tensor:
        return self.log_delta.clamp(*LOG_DELTA_RANGE).exp()


class SpanLikelihood:
    """log p(row | decoder output), span by span, in a few batched ops."""

    def __init__(self, spans: list[Span]) -> None:
        self.alpha: list[int] = []
        self.softmax: list[tuple[int, int]] = []
        pos = 0
        for span in spans:
            if span.activation == "tanh":
                self.alpha.append(pos)
            else:
                self.softmax.append((pos, span.width))
            pos += span.width

    def __call__(self, out: torch.Tensor, rows: torch.Tensor, dec: nn.Module) -> torch.Tensor:
        """Per row: sum of Gaussian log-densities of the alphas and log-probabilities of the
        one-hot categories (the row's encoding is the target)."""
        total = out.new_zeros(out.shape[0])
        if self.alpha:
            idx = torch.tensor(self.alpha, device=out.device)
            log_delta = getattr(dec, "module", dec).log_delta.clamp(*LOG_DELTA_RANGE)
            z = (rows[:, idx] - torch.tanh(out[:, idx])) / log_delta.exp()
            total = total + (-0.5 * z.square() - log_delta - 0.5 * LOG_2PI).sum(1)
        for start, width in self.softmax:
            logp = F.log_softmax(out[:, start : start + width], dim=1)
            total = total + (logp * rows[:, start : start + width]).sum(1)
        return total


class Rows:
    """Batch provider: rows drawn without replacement epoch by epoch; batch i is a function of
    (seed, i) alone, so resume is exact."""

    def __init__(self, data: np.ndarray, batch_size: int, seed: int) -> None:
        from gankit.data.source import BatchSampler

        self.data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        self.sampler = BatchSampler(len(self.data), min(batch_size, len(self.data)), seed)

    def batch(self, index: int) -> Batch:
        return Batch(self.data[self.sampler.indices(index)])

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class TVAE(GenerativeModel):
    """Encoder `enc` and decoder `dec` on encoded rows; one Adam `vae`; the ELBO step."""

    ema_network = None

    def __init__(
        self,
        spans: list[Span],
        *,
        latent_dim: int = 128,
        hidden: tuple[int, ...] = (128, 128),
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        recon_weight: float = 2.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        width = sum(s.width for s in spans)
        self.networks = {
            "enc": RowEncoder(width, hidden, latent_dim),
            "dec": RowDecoder(latent_dim, hidden, spans),
        }
        self.likelihood = SpanLikelihood(spans)
        self.latent_dim, self.lr, self.weight_decay = latent_dim, lr, weight_decay
        self.recon_weight = recon_weight
        self.noise = torch.Generator().manual_seed(seed + 1)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = [p for net in self.networks.values() for p in net.parameters()]
        return {"vae": torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)}

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        rows = batches.next().x
        enc, dec = self.live["enc"], self.live["dec"]
        eps = torch.randn(len(rows), self.latent_dim, generator=self.noise).to(rows)
        with self.autocast():
            mu, logvar = enc(rows)
            z = mu + torch.exp(0.5 * logvar) * eps
            rec = self.likelihood(dec(z).float(), rows, dec)
            kl = gaussian_kl(mu.float(), logvar.float())
            loss = -(self.recon_weight * rec - kl).mean()
        params = [p for net in self.networks.values() for p in net.parameters()]
        update(loss, optimizers["vae"], params)
        rec_mean, kl_mean = float(rec.detach().mean()), float(kl.detach().mean())
        return {
            "loss_vae": float(loss.detach()),
            "elbo": rec_mean - kl_mean,
            "reconstruction": rec_mean,
            "kl": kl_mean,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
