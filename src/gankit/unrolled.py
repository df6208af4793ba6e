"""Unrolled GAN (Metz et al. 2017): the generator's loss after k simulated discriminator steps.

The simulated steps are functional: `torch.func.functional_call` evaluates D with a dictionary
of updated parameters, θₖ = θₖ₋₁ − η ∇θ L_D(θₖ₋₁), so the real discriminator is never copied or
modified. With `backprop=True` the generator's gradient flows through the k updates (the
paper's full method, second order); with False the updates are treated as constants (the
cheaper surrogate in Metz et al. §2.3). k = 0 is exactly the plain generator loss. The
simulated steps use the last real batch and plain SGD (Metz et al. used the D optimizer;
penalties are not simulated).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from gankit.objectives import Augment, Loss, Objective, Penalty


class UnrolledObjective(Objective):
    """An `Objective` whose generator loss looks k discriminator steps ahead."""

    def __init__(
        self,
        loss: Loss,
        penalties: Sequence[Penalty] = (),
        augment: Augment | None = None,
        steps: int = 5,
        lr: float = 1e-4,
        backprop: bool = True,
    ) -> None:
        super().__init__(loss, penalties, augment)
        self.steps, self.lr, self.backprop = steps, lr, backprop

    def unrolled_parameters(
        self, d: nn.Module, fake: torch.Tensor, real: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """D's parameters after `steps` simulated SGD steps on (real, fake)."""
        module = getattr(d, "module", d)  # unwrap DistributedDataParallel
        params = dict(module.named_parameters())
        buffers = dict(module.named_buffers())
        real_v = self._view(real.detach())
        fake_in = fake if self.backprop else fake.detach()
        for _ in range(self.steps):
            state = {**buffers, **params}
            real_s = functional_call(module, state, (real_v,))
            fake_s = functional_call(module, state, (self._view(fake_in),))
            grads = torch.autograd.grad(
                self.loss.d(real_s, fake_s), list(params.values()), create_graph=self.backprop
            )
            params = {
                name: p - self.lr * (g if self.backprop else g.detach())
                for (name, p), g in zip(params.items(), grads, strict=True)
            }
        return {**buffers, **params}

    def generator_loss(self, d: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """L_G(θ_D after k simulated steps)."""
        if self.steps == 0:
            return super().generator_loss(d, fake, real)
        state = self.unrolled_parameters(d, fake, real)
        module = getattr(d, "module", d)
        return self.loss.g(functional_call(module, state, (self._view(fake),)))
