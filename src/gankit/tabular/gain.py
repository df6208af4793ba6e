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

from gankit.engine.runs import estimator_settings, fit_model
from gankit.models.tabular.gain import RandomSubsets, ReferenceGAIN


def gain_impute(
    data: np.ndarray,
    batch_size: int = 128,
    hint_rate: float = 0.9,
    alpha: float = 100.0,
    iterations: int = 10_000,
    seed: int = 0,
) -> np.ndarray:
    """Impute the NaNs of a numeric array with the reference GAIN recipe; returns a new array.

    The game is `ReferenceGAIN` trained on the engine (the same loop as every gankit model)."""
    torch.manual_seed(seed)
    x = np.array(data, dtype=np.float64)
    m = (~np.isnan(x)).astype(np.float32)
    lo, hi = np.nanmin(x, 0), np.nanmax(x, 0)
    norm = np.nan_to_num((x - lo) / (hi - lo + 1e-6), nan=0.0).astype(np.float32)
    n, d = x.shape
    xt, mt = torch.from_numpy(norm), torch.from_numpy(m)
    model = ReferenceGAIN(d, hint_rate, alpha, seed)
    provider = RandomSubsets(xt, mt, min(batch_size, n), seed)
    fit_model(model, provider, estimator_settings(iterations, seed))
    out = model.impute(xt, mt).numpy().astype(np.float64)
    out = out * (hi - lo + 1e-6) + lo
    for j in range(d):
        observed = x[~np.isnan(x[:, j]), j]
        if len(np.unique(observed)) < 20:
            out[:, j] = np.round(out[:, j])
    return out
