"""The DP-SGD model of `TabularGAN(dp=...)`: CTGAN's generator against a critic trained with
per-row clipped, noised gradients (Abadi et al. 2016), and its Poisson-sampled batch provider.

The front end (`gankit.tabular.dp`) declares what is public, calibrates the noise for the target
(ε, δ) and reports the accountant's ε; this module is the training step the engine runs. A
per-sample unit is one real row paired with the fake row generated for its condition, so
removing a row removes exactly one clipped term.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from gankit.engine.model import Batch, Batches, update
from gankit.models.dpsgd import per_sample_module, private_update
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
        self.grad_sample = per_sample_module(self.networks["d"], "TabularGAN(dp=...) critic")

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
        """One DP-SGD step of the critic on (real row, its fake) pairs (`gankit.models.dpsgd`)."""
        m = len(batch.x)

        def per_pair_loss() -> torch.Tensor:
            cond = batch.extra["real_cond"]
            with torch.no_grad():
                fake = self.activation(g(self.noise(m), cond))
            scores = d(torch.cat([torch.cat([fake, cond], 1), torch.cat([batch.x, cond], 1)], 0))
            return F.softplus(scores[:m]) + F.softplus(-scores[m:])

        private_update(
            self.networks["d"],
            per_pair_loss if m else None,
            optimizer,
            clip=self.clip,
            sigma=self.sigma,
            expected_batch=self.expected_batch,
            noise=torch.randn_like,
        )

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
