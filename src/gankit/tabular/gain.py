"""A faithful PyTorch reproduction of GAIN (Yoon, Jordon & van der Schaar, ICML 2018).

Used as the benchmark baseline. It follows the authors' reference code (`jsyoon0823/GAIN`,
`gain.py`/`utils.py`, as described in `research/tabular.md`): per-column min-max scaling with
nanmin/nanmax, missing entries filled with U(0, 0.01) noise, G on [X, M] and D on [X_hat, H]
as 3-layer MLPs 2d -> d -> d -> d with ReLU and sigmoid outputs, Xavier-normal initialisation,
Adam(lr=1e-3), hint H = M * Bernoulli(hint_rate), D loss = BCE on the mask, G loss =
-mean((1-M) log D) + alpha * mean((M X - M G)^2) / mean(M), one D and one G step per batch of
128, 10,000 iterations, alpha = 100, hint rate 0.9; columns with < 20 distinct observed values
are rounded after renormalising. Transductive, as the reference code is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _net(d: int) -> nn.Sequential:
    layers = [nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d)]
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=1.0 / np.sqrt(layer.in_features / 2.0))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers, nn.Sigmoid())


def gain_impute(
    data: np.ndarray,
    batch_size: int = 128,
    hint_rate: float = 0.9,
    alpha: float = 100.0,
    iterations: int = 10_000,
    seed: int = 0,
) -> np.ndarray:
    """Impute the NaNs of a numeric array with the reference GAIN recipe; returns a new array."""
    torch.manual_seed(seed)
    x = np.array(data, dtype=np.float64)
    m = (~np.isnan(x)).astype(np.float32)
    lo, hi = np.nanmin(x, 0), np.nanmax(x, 0)
    norm = (x - lo) / (hi - lo + 1e-6)
    norm = np.nan_to_num(norm, nan=0.0).astype(np.float32)
    n, d = x.shape
    G, D = _net(d), _net(d)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    xt, mt = torch.from_numpy(norm), torch.from_numpy(m)
    gen = torch.Generator().manual_seed(seed)
    b = min(batch_size, n)
    for _ in range(iterations):
        idx = torch.randperm(n, generator=gen)[:b]
        xb, mb = xt[idx], mt[idx]
        z = torch.rand(xb.shape, generator=gen) * 0.01
        h = mb * (torch.rand(xb.shape, generator=gen) < hint_rate).float()
        xb = mb * xb + (1 - mb) * z
        g = G(torch.cat([xb, mb], 1))
        x_hat = mb * xb + (1 - mb) * g
        d_prob = D(torch.cat([x_hat.detach(), h], 1))
        loss_d = -torch.mean(
            mb * torch.log(d_prob + 1e-8) + (1 - mb) * torch.log(1 - d_prob + 1e-8)
        )
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        d_prob = D(torch.cat([x_hat, h], 1))
        loss_adv = -torch.mean((1 - mb) * torch.log(d_prob + 1e-8))
        loss_rec = torch.mean((mb * xb - mb * g) ** 2) / torch.mean(mb)
        loss_g = loss_adv + alpha * loss_rec
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    with torch.no_grad():
        z = torch.rand((n, d), generator=gen) * 0.01
        xin = mt * xt + (1 - mt) * z
        out = (mt * xt + (1 - mt) * G(torch.cat([xin, mt], 1))).numpy().astype(np.float64)
    out = out * (hi - lo + 1e-6) + lo
    for j in range(d):
        observed = x[~np.isnan(x[:, j]), j]
        if len(np.unique(observed)) < 20:
            out[:, j] = np.round(out[:, j])
    return out
