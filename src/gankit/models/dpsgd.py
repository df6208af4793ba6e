"""The DP-SGD update both private models use (Abadi et al. 2016), on Opacus's per-sample
gradients: the image GANs' `DPGAN` and TabularGAN's `DPCritic`.

A per-sample unit is one real sample paired with the fake generated for it, so removing a
sample removes exactly one clipped term: each pair's gradient is clipped to `clip`, the clipped
terms are summed, Gaussian noise of std `sigma * clip` is added, and the sum is divided by the
expected batch size of Poisson sampling (as Opacus does).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from gankit.errors import ConfigError, require


def per_sample_module(network: nn.Module, what: str) -> nn.Module:
    """Opacus's `GradSampleModule` around `network` (its hooks fill `p.grad_sample`); a layer
    Opacus has no per-sample gradient for is a ConfigError naming `what` to change."""
    opacus = require("opacus", "privacy")
    try:
        return opacus.GradSampleModule(network, batch_first=True, loss_reduction="sum")
    except NotImplementedError as exc:
        raise ConfigError(
            f"{what}: Opacus cannot take per-sample gradients of this network ({exc}); "
            "choose a plainer network or train without DP"
        ) from exc


def private_update(
    network: nn.Module,
    per_pair_loss: Callable[[], torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    *,
    clip: float,
    sigma: float,
    expected_batch: float,
    noise: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    """One DP-SGD step of `network`. `per_pair_loss()` returns the [m] losses of m (fake, real)
    pairs from one forward pass over `cat([fakes, reals])` (None for an empty Poisson batch:
    the step is noise alone); `noise(p)` draws standard normal noise shaped like `p`."""
    params = [p for p in network.parameters() if p.requires_grad]
    summed = [torch.zeros_like(p) for p in params]
    for p in params:
        p.grad_sample = None  # type: ignore[attr-defined]
    if per_pair_loss is not None:
        losses = per_pair_loss()
        m = len(losses)
        with warnings.catch_warnings():  # Opacus's hooks on inputs that need no grad
            warnings.simplefilter("ignore", UserWarning)
            losses.sum().backward()
        pairs = [p.grad_sample[:m] + p.grad_sample[m:] for p in params]  # type: ignore[attr-defined]
        norms = torch.sqrt(sum(q.flatten(1).pow(2).sum(1) for q in pairs))  # type: ignore[arg-type]
        scale = (clip / (norms + 1e-6)).clamp(max=1.0)
        summed = [torch.einsum("i,i...->...", scale, q) for q in pairs]
    for p, s in zip(params, summed, strict=True):
        p.grad_sample = None  # type: ignore[attr-defined]
        p.grad = (s + noise(p) * (sigma * clip)) / expected_batch
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
