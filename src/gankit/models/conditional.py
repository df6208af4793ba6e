"""The class-conditional GAN (Mirza & Osindero 2014) as a model step.

G(z, y) is conditioned by class-conditional batch norm; D(x, y) by **projection** (Miyato &
Koyama 2018: the class embedding's inner product with D's features is added to its score), by
an **auxiliary classifier** (ACGAN, Odena et al. 2017: D also predicts the class, and the class
cross-entropy is added to both players' losses) or by **twin auxiliary classifiers** (TAC-GAN,
Gong et al. 2019: the classifier learns real data only, a twin head on D's body learns the
generated data, and G maximises the twin's cross-entropy, which cancels the conditional-entropy
term that makes ACGAN's G draw easy samples). `model.conditioning` chooses; the step is the
same for all: D's class logits are None under projection and the class term drops out.

Everything else is the GAN's: the loss, penalties and augmentation come from `gankit.objectives`
(`objective.*` as for the GAN), EMA, LR decay, checkpoints and resume from the engine. The fakes
of each D step carry the labels of the real batch beside them (so a gradient penalty mixes
samples of one class), and G's step reuses the labels of the last real batch (the data's class
frequencies).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit.engine.model import Batches, update
from gankit.errors import ConfigError
from gankit.generator import resolve_labels
from gankit.models.gan import GAN, PREVIEW_SAMPLES
from gankit.objectives import Objective, auxiliary_class_loss, build_objective

LABELLED_DATA = (
    "digits, stacked-digits, mnist, fashion-mnist, cifar10, folder (one sub-folder per class)"
)


def build(cfg, model_class: type | None = None) -> tuple[ConditionalGAN, Any]:
    """The conditional GAN (or `model_class`, a subclass: BigGAN) and its batch provider
    (registry builder of `cdcgan` and `cmlp`)."""
    from gankit.data.source import TensorBatches, load_dataset

    if cfg.objective.unroll_steps > 0:
        raise ConfigError(
            "objective.unroll_steps: the unrolled objective is not available for conditional "
            f"models (model.family = {cfg.model.family!r}); set it to 0"
        )
    dataset = load_dataset(cfg.data)
    if getattr(cfg.model, "self_conditioned", False):  # k-means labels (Liu et al. 2020)
        from gankit.models import selfcond

        return selfcond.build(cfg, dataset, model_class)
    check_labels(dataset, cfg.model.num_classes, cfg.model.family)
    return (model_class or ConditionalGAN)(cfg, dataset), TensorBatches(
        dataset, cfg.train.batch_size, cfg.train.seed
    )


def check_labels(dataset, num_classes: int, family: str) -> None:
    """ConfigError unless the dataset has labels that fit `model.num_classes`."""
    if dataset.labels is None:
        raise ConfigError(
            f"data.name = {dataset.name!r} has no labels, and model.family = {family!r} is "
            f"class-conditional; use a labelled dataset ({LABELLED_DATA})"
        )
    low, high = int(dataset.labels.min()), int(dataset.labels.max())
    if low < 0 or high >= num_classes:
        raise ConfigError(
            f"model.num_classes = {num_classes}, but data {dataset.name!r} has labels in "
            f"{low}..{high}; set model.num_classes = {high + 1}"
        )


class _WithLabels:
    """D with the labels bound: x -> scores, what the penalties of `gankit.objectives` call."""

    def __init__(self, d: nn.Module, labels: torch.Tensor) -> None:
        self.d, self.labels = d, labels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.d(x, self.labels)[0]


class ConditionalObjective:
    """An `Objective` (adversarial loss, penalties, augmentation) played by a labelled D, plus
    `class_weight` × the ACGAN class cross-entropy when D has a classifier head, or with `twin`
    the TAC-GAN terms (D's class logits are then the classifier's K and the twin's K)."""

    def __init__(self, base: Objective, class_weight: float = 1.0, twin: bool = False) -> None:
        self.base, self.class_weight, self.twin = base, class_weight, twin

    def _view(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.augment(x) if self.base.augment is not None else x

    def discriminator_loss(
        self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """D's loss on one labelled batch (fakes generated for the same labels), with stats."""
        real_v, fake_v = self._view(real), self._view(fake.detach())
        real_scores, real_logits = d(real_v, labels)
        fake_scores, fake_logits = d(fake_v, labels)
        observe = getattr(self.base.augment, "observe", None)
        if observe is not None:  # adaptive augmentation (ADA) reads D's verdict on real data
            observe(real_scores)
        loss = self.base.loss.d(real_scores, fake_scores)
        bound = _WithLabels(d, labels)
        for penalty in self.base.penalties:
            loss = loss + penalty(bound, real_v, fake_v)  # type: ignore[arg-type]
        stats = {
            "d_real": float(real_scores.detach().float().mean()),
            "d_fake": float(fake_scores.detach().float().mean()),
        }
        if self.base.loss.sign_separates:
            perfect = bool((real_scores > 0).all() and (fake_scores < 0).all())
            stats["d_perfect"] = float(perfect)
        if real_logits is not None and fake_logits is not None:
            cls, class_stats = self._class_loss_d(real_logits, fake_logits, labels)
            loss = loss + self.class_weight * cls
            stats.update(class_stats)
        return loss, stats

    def _class_loss_d(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """D's class term: ACGAN, CE of the classifier on real and on generated samples; TAC,
        CE of the classifier on real samples plus CE of the twin on generated ones."""
        if not self.twin:
            cls = auxiliary_class_loss(real_logits, labels) + auxiliary_class_loss(
                fake_logits, labels
            )
            acc = (real_logits.argmax(1) == labels).float().mean()
            return cls, {"d_class": float(cls.detach()), "d_class_acc": float(acc)}
        k = real_logits.shape[1] // 2
        real_c, fake_twin = real_logits[:, :k], fake_logits[:, k:]
        cls = auxiliary_class_loss(real_c, labels) + auxiliary_class_loss(fake_twin, labels)
        return cls, {
            "d_class": float(cls.detach()),
            "d_class_acc": float((real_c.argmax(1) == labels).float().mean()),
            "d_twin_acc": float((fake_twin.argmax(1) == labels).float().mean()),
        }

    def generator_loss(
        self, d: nn.Module, fake: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """G's loss on samples generated for `labels`: ACGAN adds the classifier's CE; TAC adds
        the classifier's CE minus the twin's (G maximises the twin's)."""
        scores, logits = d(self._view(fake), labels)
        loss = self.base.loss.g(scores)
        if logits is not None and self.twin:
            k = logits.shape[1] // 2
            cls = auxiliary_class_loss(logits[:, :k], labels)
            cls = cls - auxiliary_class_loss(logits[:, k:], labels)
            loss = loss + self.class_weight * cls
        elif logits is not None:
            loss = loss + self.class_weight * auxiliary_class_loss(logits, labels)
        return loss

    def after_discriminator_step(self, d: nn.Module) -> None:
        self.base.after_discriminator_step(d)

    def state_dict(self) -> dict[str, float]:
        return self.base.state_dict()

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.base.load_state_dict(state)


class ConditionalGAN(GAN):
    """Generator `g` (z, y) and discriminator `d` (x, y) of a `cdcgan` or `cmlp` config; the
    GAN's optimizers, noise, state and export, with labels in the step and in sampling."""

    def __init__(self, cfg, dataset) -> None:
        objective = ConditionalObjective(
            build_objective(cfg.objective),
            cfg.model.class_weight,
            twin=cfg.model.conditioning == "tac",
        )
        super().__init__(cfg, dataset, objective)
        self.num_classes = k = int(cfg.model.num_classes)
        # preview: one row per class (k rows of k) when that is small, else classes in turn
        per_row = k if k <= 16 else 0
        n = k * per_row if per_row else PREVIEW_SAMPLES
        self.fixed_noise = torch.randn(
            n, self.latent_dim, generator=torch.Generator().manual_seed(cfg.train.seed + 2)
        )
        self.fixed_labels = (
            torch.arange(k).repeat_interleave(per_row) if per_row else torch.arange(n) % k
        )

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """k D updates on labelled real batches and fakes of the same labels; one G update."""
        g, d = self.live["g"], self.live["d"]
        clip = self.cfg.train.grad_clip
        stats: dict[str, float] = {}
        for _ in range(self.cfg.train.d_steps):
            batch = batches.next()
            real, labels = batch.x, batch.labels
            with torch.no_grad(), self.autocast():
                fake = g(self.latent(batches), labels)
            with self.autocast():
                loss_d, stats = self.objective.discriminator_loss(d, real, fake, labels)
            update(loss_d, optimizers["d"], self.networks["d"].parameters(), clip)
            self.objective.after_discriminator_step(self.networks["d"])
        labels, z = self.generator_inputs(labels, batches)
        with self.autocast():
            fake = g(z, labels)
            loss_g = self.objective.generator_loss(d, fake, labels)
            extra, extra_stats = self.generator_extra_loss(fake, z)
            if extra is not None:
                loss_g = loss_g + extra
        update(loss_g, optimizers["g"], self.networks["g"].parameters(), clip)
        out = {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()), **stats}
        return {**out, **extra_stats}

    def generator_inputs(self, labels: torch.Tensor, batches: Batches) -> tuple[torch.Tensor, ...]:
        """G's labels and noise for its update: the last D batch's labels, fresh noise. A hook
        for variants that pair or resample them (the self-conditioned GAN's mode seeking)."""
        return labels, self.latent(batches)

    def generator_extra_loss(
        self, fake: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor | None, dict[str, float]]:
        """A term added to G's loss and its logged values; none for the conditional GAN."""
        return None, {}

    # --- sampling and saving ------------------------------------------------------------------
    @torch.no_grad()
    def _generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        net = self.sampling_network("g")
        was_training = net.training
        net.eval()
        out = net(z.to(self.device), labels.to(self.device)).float().cpu()
        net.train(was_training)
        return out

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """n samples of the (EMA) generator for `conditions` (a class, or one per sample; None:
        classes drawn uniformly with the seed), from seeded noise."""
        labels = resolve_labels(conditions, n, self.num_classes, seed)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self._generate(torch.randn(n, self.latent_dim, generator=gen), labels)

    def preview(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fixed noise and labels (one row per class), and real points for toy data."""
        out = self._generate(self.fixed_noise, self.fixed_labels)
        return out, None if self.dataset.is_image else self.dataset.x[:2000]

    def spec(self) -> dict[str, Any]:
        """The GAN's model.json contents with the classes and how D is conditioned."""
        return {
            **super().spec(),
            "num_classes": self.num_classes,
            "conditioning": self.cfg.model.conditioning,
        }
