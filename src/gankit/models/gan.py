"""The GAN of Goodfellow et al. 2014 for images and toy data: Algorithm 1 as a model step.

k discriminator updates on fresh real and generated minibatches, then one generator update.
Everything that varies between GAN recipes — the loss, penalties, augmentation, unrolling,
packing, minibatch-std, a categorical latent, the network family — is a piece the model is
composed from (`gankit.objectives`, `gankit.nets`); the step itself never branches on them.
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.engine.model import Batches, GenerativeModel, update
from gankit.generator import DISCRIMINATOR_PREFIX
from gankit.nets import architecture_spec, build_discriminator, build_generator
from gankit.objectives import Objective, build_objective
from gankit.registry import IMAGE_GENERATOR, TOY_GENERATOR

PREVIEW_SAMPLES = 64


def build(cfg) -> tuple[GAN, Any]:
    """The GAN and its batch provider for a config (registry builder of the GAN families)."""
    from gankit.data.source import TensorBatches, load_dataset

    dataset = load_dataset(cfg.data)
    if cfg.train.dp_epsilon is not None:  # DP-SGD on D (docs/privacy.md)
        from gankit.models import dp_gan

        return dp_gan.build(cfg, dataset)
    return GAN(cfg, dataset), TensorBatches(dataset, cfg.train.batch_size, cfg.train.seed)


def make_optimizer(name: str, params, lr: float, betas: list[float], momentum: float):
    """An optimizer by name with the config's hyper-parameters."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.RMSprop(params, lr=lr, momentum=momentum)


class GAN(GenerativeModel):
    """Generator `g` and discriminator `d` built from the config's model section."""

    def __init__(self, cfg, dataset, objective: Objective | None = None) -> None:
        super().__init__()
        self.cfg, self.dataset = cfg, dataset
        self.arch = architecture_spec(cfg.model_dict(), dataset.shape)
        self.networks = {"g": build_generator(self.arch), "d": build_discriminator(self.arch)}
        self.objective = objective or build_objective(cfg.objective)
        t = cfg.train
        self.latent_dim, self.batch_size = cfg.model.latent_dim, t.batch_size
        self.noise = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_noise = torch.randn(
            PREVIEW_SAMPLES, self.latent_dim, generator=torch.Generator().manual_seed(t.seed + 2)
        )

    # --- training ---------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        t = self.cfg.train
        return {
            name: make_optimizer(
                t.optimizer, self.networks[name].parameters(), lr, t.betas, t.momentum
            )
            for name, lr in (("g", t.lr_g), ("d", t.lr_d))
        }

    def latent(self, batches: Batches) -> torch.Tensor:
        """Noise for one global minibatch, this rank's slice on the device."""
        z = torch.randn(self.batch_size, self.latent_dim, generator=self.noise)
        return batches.local(z)

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """Algorithm 1: k discriminator updates, then one generator update."""
        g, d = self.live["g"], self.live["d"]
        clip = self.cfg.train.grad_clip
        stats: dict[str, float] = {}
        for _ in range(self.cfg.train.d_steps):
            real = batches.next().x
            with torch.no_grad(), self.autocast():
                fake = g(self.latent(batches))
            with self.autocast():
                loss_d, stats = self.objective.discriminator_loss(d, real, fake)
            update(loss_d, optimizers["d"], self.networks["d"].parameters(), clip)
            self.objective.after_discriminator_step(self.networks["d"])
        with self.autocast():
            loss_g = self.objective.generator_loss(d, g(self.latent(batches)), real)
        update(loss_g, optimizers["g"], self.networks["g"].parameters(), clip)
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()), **stats}

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "objective": self.objective.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.objective.load_state_dict(state.get("objective", {}))

    # --- sampling and saving ------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """n samples of the (EMA) generator in eval mode from seeded noise."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        net = self.sampling_network("g")
        was_training = net.training
        net.eval()
        out = net(torch.randn(n, self.latent_dim, generator=gen).to(self.device)).float().cpu()
        net.train(was_training)
        return out

    @torch.no_grad()
    def preview(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Samples from the run's fixed noise (and real points to draw them against)."""
        net = self.sampling_network("g")
        was_training = net.training
        net.eval()
        out = net(self.fixed_noise.to(self.device)).float().cpu()
        net.train(was_training)
        return out, None if self.dataset.is_image else self.dataset.x[:2000]

    def spec(self) -> dict[str, Any]:
        """model.json contents (without the weights hash, added on write)."""
        from gankit import __version__
        from gankit.config import to_dict

        image = self.dataset.is_image
        return {
            "kind": IMAGE_GENERATOR if image else TOY_GENERATOR,
            "architecture": self.arch,
            "latent_dim": self.latent_dim,
            "num_classes": None,
            "data": self.dataset.spec(),
            "preprocessing": {
                "range": [-1, 1] if image else None,
                "description": "pixels scaled linearly to [-1, 1]" if image else "raw coordinates",
            },
            "ema": "g" in self.averages,
            "config": to_dict(self.cfg),
            "gankit_version": __version__,
        }

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """G (its EMA when kept) and D under `discriminator.`, for rejection sampling."""
        weights = dict(self.sampling_network("g").state_dict())
        weights.update(
            {DISCRIMINATOR_PREFIX + k: v for k, v in self.networks["d"].state_dict().items()}
        )
        return weights, self.spec()
