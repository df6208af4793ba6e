"""CTGAN's training step (Xu et al. 2019, from the paper) as an engine model.

WGAN-GP with conditional vectors: the critic sees rows concatenated with their condition
vector in PacGAN packs; the generator is also penalised by cross-entropy when the generated
span of the conditioned column ignores the condition. Training-by-sampling (which condition,
which real row) is the batch provider's job.

With a `class_span` (the encoded span of one discrete column, the class), an auxiliary
classifier `c` is trained on the real rows to predict the class from the rest of the row, and
the generator pays its cross-entropy against the class it generated (the auxiliary classifier
of CTAB-GAN, Zhao et al. 2021): the critic alone, judging packs of rows, let the other columns
drift from the requested class (a forest trained on real wine rows agreed with the requested
class in 66-82 % of conditioned rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gankit.engine.model import Batch, Batches, GenerativeModel, update
from gankit.nets.tabular import ResidualGenerator, Span, SpanActivation, pac_critic
from gankit.objectives import GradientPenalty


class ConditionalRows:
    """Batch provider: condition vectors by training-by-sampling and real rows that match them.

    `sampler.train_batch(n, rng)` picks (conditions, conditioned column per row, row indices);
    the real rows, each with its own condition vector, are then shuffled against the
    generator's conditions, as in CTGAN. The numpy RNG is the provider's state, so a resumed run
    draws the same batches.
    """

    def __init__(self, data: np.ndarray, sampler: Any, batch_size: int, seed: int) -> None:
        self.data = torch.from_numpy(data)
        self.sampler, self.batch_size = sampler, batch_size
        self.rng = np.random.default_rng(seed)

    def batch(self, index: int) -> Batch:
        n = self.batch_size
        if self.sampler.spans:
            cond, cols, rows = self.sampler.train_batch(n, self.rng)
            cols_t = torch.from_numpy(cols)
        else:
            cond = np.zeros((n, 0), dtype=np.float32)
            rows = self.rng.integers(len(self.data), size=n)
            cols_t = torch.full((n,), -1, dtype=torch.long)
        # real rows are shuffled against the conditions the generator gets, and keep their own
        # condition vectors (`real_cond`): the critic sees (row, its condition) pairs
        perm = self.rng.permutation(n)
        cond_t = torch.from_numpy(cond)
        extra = {"cond": cond_t, "cols": cols_t, "real_cond": cond_t[perm]}
        return Batch(self.data[rows[perm]], extra=extra)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = _rng_restore(state["rng"])


def class_head(n_in: int, hidden: tuple[int, ...], k: int) -> nn.Sequential:
    """The auxiliary classifier: an MLP (LeakyReLU 0.2, dropout 0.5 as the critic) to k logits."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
        n_in = h
    return nn.Sequential(*layers, nn.Linear(n_in, k))


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy PCG64 state as strings and ints (what `torch.load(weights_only=True)` reads)."""
    s = rng.bit_generator.state
    return {
        "bit_generator": s["bit_generator"],
        "state": str(s["state"]["state"]),
        "inc": str(s["state"]["inc"]),
        "has_uint32": int(s["has_uint32"]),
        "uinteger": int(s["uinteger"]),
    }


def _rng_restore(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "bit_generator": state["bit_generator"],
        "state": {"state": int(state["state"]), "inc": int(state["inc"])},
        "has_uint32": state["has_uint32"],
        "uinteger": state["uinteger"],
    }


class CTGAN(GenerativeModel):
    """Generator `g` (residual MLP) and packed critic `d` on mode-normalised rows."""

    def __init__(
        self,
        spans: list[Span],
        discrete_spans: list[tuple[int, int, str]],
        cond_dim: int,
        *,
        z_dim: int = 128,
        hidden: tuple[int, ...] = (256, 256),
        pac: int = 10,
        lr: float = 2e-4,
        gp_weight: float = 10.0,
        critic_steps: int = 1,
        class_span: tuple[int, int] | None = None,
        class_weight: float = 1.0,
    ) -> None:
        super().__init__()
        width = sum(s.width for s in spans)
        self.networks = {
            "g": ResidualGenerator(z_dim, cond_dim, hidden, width),
            "d": pac_critic(width + cond_dim, hidden, pac),
        }
        self.class_span, self.class_weight = class_span, class_weight
        if class_span is not None:
            start, k = class_span
            self.rest = torch.tensor([i for i in range(width) if not start <= i < start + k])
            self.networks["c"] = class_head(width - k, hidden, k)
        self.activation = SpanActivation(spans)
        self.discrete_spans, self.cond_dim = discrete_spans, cond_dim
        self.offsets = np.cumsum([0] + [w for _, w, _ in discrete_spans])
        self.z_dim, self.pac, self.lr, self.critic_steps = z_dim, pac, lr, critic_steps
        self.penalty = GradientPenalty(gp_weight, group=pac)

    def attach(self, device, wrap, autocast) -> None:
        super().attach(device, wrap, autocast)
        self.activation.to(device)
        if self.class_span is not None:
            self.rest = self.rest.to(device)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        return {
            name: torch.optim.Adam(
                net.parameters(), lr=self.lr, betas=(0.5, 0.9), weight_decay=1e-6, **fused
            )
            for name, net in self.networks.items()
        }

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        g, d = self.live["g"], self.live["d"]
        for _ in range(self.critic_steps):
            batch = batches.next()
            cond = batch.extra["cond"]
            n = len(cond)
            with torch.no_grad():  # no graph through G for the critic's step
                fake = self.activation(g(self.noise(n), cond))
            real = torch.cat([batch.x, batch.extra["real_cond"]], 1)
            fake_in = torch.cat([fake, cond], 1)
            # one critic call for both halves (n is a multiple of pac: no mixed packs)
            scores = d(torch.cat([fake_in, real], 0))
            wasserstein = scores[: n // self.pac].mean() - scores[n // self.pac :].mean()
            loss_d = wasserstein + self.penalty(d, real, fake_in)
            update(loss_d, optimizers["d"])
        logs = {}
        if self.class_span is not None:  # the classifier learns the class from real rows
            loss_c = self.class_loss(batch.x)
            update(loss_c, optimizers["c"])
            logs["loss_class_real"] = float(loss_c.detach())
        batch = batches.next()
        cond, cols = batch.extra["cond"], batch.extra["cols"]
        raw = g(self.noise(len(cond)), cond)
        fake = self.activation(raw)
        adversarial = -d(torch.cat([fake, cond], 1)).mean()
        condition = self.condition_loss(raw, cond, cols)
        loss_g = adversarial + condition
        if self.class_span is not None:  # ... and G's rows must agree with their own class
            classed = self.class_loss(fake)
            loss_g = loss_g + self.class_weight * classed
            logs["loss_class_fake"] = float(classed.detach())
        update(loss_g, optimizers["g"])
        return {
            "loss_d": float(loss_d.detach()),
            "loss_g": float(adversarial.detach()),
            "loss_cond": float(condition.detach()),
            "wasserstein": float(-wasserstein.detach()),
            **logs,
        }

    def class_loss(self, rows: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the classifier's guess from the rest of each row against the class
        the row holds (its one-hot, or the argmax of a generated span)."""
        start, k = self.class_span  # type: ignore[misc]
        label = rows[:, start : start + k].detach().argmax(1)
        return F.cross_entropy(self.live["c"](rows[:, self.rest]), label)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim).to(self.device)

    def condition_loss(
        self, raw: torch.Tensor, cond: torch.Tensor, cols: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy between the generated span of the conditioned column and its category."""
        loss = raw.new_zeros(())
        for j, (start, width, _) in enumerate(self.discrete_spans):
            sel = torch.nonzero(cols == j).squeeze(1)
            if len(sel) == 0:
                continue
            off = int(self.offsets[j])
            target = cond[sel, off : off + width].argmax(1)
            loss = loss + F.cross_entropy(raw[sel, start : start + width], target, reduction="sum")
        return loss / raw.shape[0]

    @torch.no_grad()
    def generate(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Raw encoded rows from the (EMA) generator in eval mode."""
        net = self.sampling_network("g")
        was_training = net.training
        net.eval()
        out = net(z.to(self.device), cond.to(self.device)).cpu()
        net.train(was_training)
        return out
