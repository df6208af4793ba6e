"""The DP-SGD model of `TabularGAN(dp=...)`: CTGAN's generator against a critic trained with
per-row clipped, noised gradients (Abadi et al. 2016), and its Poisson-sampled batch provider.

The front end (`gankit.tabular.dp`) declares what is public, calibrates the noise for the target
(ε, δ) and reports the accountant's ε; this module is the training step the engine runs. A
per-sample unit is one real row paired with the fake row generated for its condition, so
removing a row removes exactly one clipped term.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from gankit.engine.model import Batch, Batches, update
from gankit.errors import require
from gankit.models.tabular.ctgan import CTGAN, _rng_restore, _rng_state

if TYPE_CHECKING:  # the front end's package imports this module
    from gankit.tabular.encoders import CondSampler


class PoissonRows:
    """Batch provider of DP-SGD: every row joins a batch independently with `sample_rate`
    (Poisson sampling, what the accountant's amplification assumes) and gets the condition
    of its own category in a uniformly drawn discrete column."""

    def __init__(
        self, data: np.ndarray, spans: list[tuple[int, int, str]], sample_rate: float, seed: int
    ) -> None:
        self.data = torch.from_numpy(data)
        self.spans, self.sample_rate = spans, sample_rate
        self.offsets = np.cumsum([0] + [w for _, w, _ in spans])
        self.rng = np.random.default_rng(seed)

    def batch(self, index: int) -> Batch:
        rows = np.flatnonzero(self.rng.random(len(self.data)) < self.sample_rate)
        x = self.data[rows]
        cond = torch.zeros(len(rows), int(self.offsets[-1]))
        if self.spans and len(rows):
            cols = self.rng.integers(len(self.spans), size=len(rows))
            for j, (start, width, _) in enumerate(self.spans):
                sel = np.flatnonzero(cols == j)
                cats = x[sel, start : start + width].argmax(1).numpy()
                cond[sel, int(self.offsets[j]) + cats] = 1.0
        return Batch(x, extra={"real_cond": cond})

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = _rng_restore(state["rng"])


class DPCritic(CTGAN):
    """CTGAN's generator against a DP-SGD critic (see the module docstring).

    `sigma` (noise multiplier), `max_grad_norm` (C) and `expected_batch` (sample rate x rows:
    the noisy gradient sum is divided by it, as Opacus does for Poisson batches); `sampler`
    holds the noisy category frequencies the generator's conditions are drawn from."""

    def __init__(
        self,
        spans: Any,
        sampler: CondSampler,
        *,
        sigma: float,
        max_grad_norm: float,
        expected_batch: float,
        g_batch: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(spans, sampler.spans, sampler.cond_dim, pac=1, gp_weight=0.0, **kwargs)
        self.sampler, self.sigma, self.clip = sampler, sigma, max_grad_norm
        self.expected_batch, self.g_batch = expected_batch, g_batch
        self.freq = [torch.tensor(p, dtype=torch.float32) for p in sampler.freq_p]

    def attach(self, device, wrap, autocast) -> None:
        super().attach(device, wrap, autocast)
        opacus = require("opacus", "privacy")
        self.grad_sample = opacus.GradSampleModule(
            self.networks["d"], batch_first=True, loss_reduction="sum"
        )

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        g, d = self.live["g"], self.live["d"]
        for _ in range(self.critic_steps):
            self.private_critic_step(batches.next(), g, d, optimizers["d"])
        self.grad_sample.disable_hooks()  # G's backward through d needs no per-row gradients
        try:
            cond, cols = self.generator_conditions(self.g_batch)
            raw = g(self.noise(self.g_batch), cond)
            adversarial = F.softplus(-d(torch.cat([self.activation(raw), cond], 1))).mean()
            condition = self.condition_loss(raw, cond, cols)
            update(adversarial + condition, optimizers["g"])
        finally:
            self.grad_sample.enable_hooks()
        # no critic loss on real rows in the logs: metrics.jsonl would publish it outside DP
        return {
            "loss_g": float(adversarial.detach()),
            "loss_cond": float(condition.detach()),
        }

    def private_critic_step(self, batch: Batch, g, d, optimizer) -> None:
        """One DP-SGD step: per (real row, its fake) pair gradients clipped to C, summed,
        Gaussian noise of std sigma * C added, divided by the expected batch size."""
        params = [p for p in self.networks["d"].parameters() if p.requires_grad]
        m = len(batch.x)
        summed = [torch.zeros_like(p) for p in params]
        for p in params:
            p.grad_sample = None  # type: ignore[attr-defined]
        if m:
            cond = batch.extra["real_cond"]
            with torch.no_grad():
                fake = self.activation(g(self.noise(m), cond))
            scores = d(torch.cat([torch.cat([fake, cond], 1), torch.cat([batch.x, cond], 1)], 0))
            per_row = F.softplus(scores[:m]) + F.softplus(-scores[m:])
            with warnings.catch_warnings():  # Opacus's hooks on inputs that need no grad
                warnings.simplefilter("ignore", UserWarning)
                per_row.sum().backward()
            pairs = [p.grad_sample[:m] + p.grad_sample[m:] for p in params]  # type: ignore[attr-defined]
            norms = torch.sqrt(sum(q.flatten(1).pow(2).sum(1) for q in pairs))  # type: ignore[arg-type]
            scale = (self.clip / (norms + 1e-6)).clamp(max=1.0)
            summed = [torch.einsum("i,i...->...", scale, q) for q in pairs]
        for p, s in zip(params, summed, strict=True):
            p.grad_sample = None  # type: ignore[attr-defined]
            noise = torch.randn_like(p) * (self.sigma * self.clip)
            p.grad = (s + noise) / self.expected_batch
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def generator_conditions(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditions for the generator's step: a column uniformly, a category by the noisy
        frequencies (what the critic's real rows follow); torch's seeded RNG."""
        cond = torch.zeros(n, self.cond_dim)
        if not self.discrete_spans:
            return cond.to(self.device), torch.full((n,), -1, device=self.device)
        cols = torch.randint(len(self.discrete_spans), (n,))
        for j in range(len(self.discrete_spans)):
            sel = torch.nonzero(cols == j).squeeze(1)
            if len(sel):
                cats = torch.multinomial(self.freq[j], len(sel), replacement=True)
                cond[sel, int(self.offsets[j]) + cats] = 1.0
        return cond.to(self.device), cols.to(self.device)
