"""The self-conditioned GAN (Liu et al., CVPR 2020) as an option of the conditional family.

`model.self_conditioned: true` on a `cmlp` or `cdcgan` config replaces the data's labels (it
needs none) by the clusters of k-means with K = `model.num_classes` clusters, and trains the
class-conditional GAN of `gankit.models.conditional` on them: G gets the cluster through its
class-conditional batch norm, D through projection (or an auxiliary classifier). Every cluster
must be produced, so a mode the generator would drop is a cluster it is asked for by name.

Sampling needs no labels: the cluster is drawn from the clusters' training proportions (the
`class_prior` of model.json, covered by its hash), then G decodes (z, cluster). That is the
generator alone — nothing is drawn and thrown away; `labels=` still picks a cluster.

`model.mode_seeking` > 0 adds MSGAN's term (Mao et al., CVPR 2019) to G's loss: the two halves of
G's batch get the same clusters and different noise, and G minimises λ / (mean |G(z₁, y) −
G(z₂, y)| / mean |z₁ − z₂| + ε), so that two noises of one cluster do not land on one image
(conditional GANs tend to collapse within a class: the digits' recall is what it lifts).

Differences from the paper, on purpose: the clusters are computed once, on the data itself
(flattened), before training; the paper clusters D's features and re-clusters during training,
which matters for images, where pixel distance is a poor similarity, and not for 2-D mixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gankit.engine.model import Batches
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.generator import resolve_labels
from gankit.models.conditional import ConditionalGAN

KMEANS_ITERATIONS = 100  # Lloyd iterations at most (it stops when no label changes)
FIT_SAMPLES = 10_000  # k-means is fitted on at most this many rows (a seeded subsample)
ASSIGN_BLOCK = 1 << 22  # distance entries computed at once when labelling points
MS_EPS = 1e-5  # MSGAN's ε in λ / (ratio + ε)


@dataclass
class Clustering:
    """K cluster centres of the flattened training data and each cluster's share of it."""

    centres: torch.Tensor  # [K, D] float64
    prior: torch.Tensor  # [K] float64, sums to 1

    def spec(self) -> dict[str, Any]:
        """What model.json records about the clusters (`class_prior` is read by samplers)."""
        return {"class_prior": self.prior.tolist(), "clusters": {"method": "k-means"}}


def assign(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """The index of each row's nearest centre (squared distances in float64, in blocks)."""
    flat = x.reshape(len(x), -1).double()
    block = max(1, ASSIGN_BLOCK // len(centres))
    norms = (centres**2).sum(1)
    parts = [(norms - 2 * chunk @ centres.T).argmin(1) for chunk in flat.split(block)]
    return torch.cat(parts)


def _plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn with probability
    proportional to its squared distance from the centres so far."""
    first = int(torch.randint(len(x), (1,), generator=gen))
    chosen = [first]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        total = float(d2.sum())
        if total == 0:
            raise DataError(
                f"k-means: the data has fewer than {k} distinct points; set model.num_classes "
                f"(the number of clusters) to at most {len(chosen)}"
            )
        nxt = int(torch.multinomial(d2 / total, 1, generator=gen))
        chosen.append(nxt)
        d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(1))
    return x[chosen].clone()


def kmeans(x: torch.Tensor, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(centres [k, D], labels [n]) of k-means on the flattened rows of `x`: fitted on a seeded
    subsample of at most `FIT_SAMPLES` rows (k-means++ seeding, then Lloyd iterations until no
    label changes), then every row labelled by its nearest centre; deterministic for a seed."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"model.num_classes (the number of clusters) must be >= 1, got {k!r}")
    if k > len(x):
        raise ConfigError(
            f"model.num_classes = {k} clusters, but the data has only {len(x)} samples; "
            "use fewer clusters"
        )
    flat = x.reshape(len(x), -1).double()
    if not torch.isfinite(flat).all():
        raise DataError("k-means: the data has NaN or infinite values")
    gen = torch.Generator().manual_seed(seed)
    fit = flat[torch.randperm(len(flat), generator=gen)[:FIT_SAMPLES]]
    if len(fit) < k:  # fewer rows than clusters only when the whole data is that small
        fit = flat
    centres = _plus_plus(fit, k, gen)
    labels = assign(fit, centres)
    for _ in range(KMEANS_ITERATIONS):
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, labels, fit)
        kept = counts > 0  # an emptied cluster keeps its centre
        centres[kept] = sums[kept] / counts[kept, None].double()
        new = assign(fit, centres)
        if torch.equal(new, labels):
            break
        labels = new
    return centres, assign(flat, centres)


def proportions(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Each cluster's share of the labels, [k] float64."""
    counts = torch.bincount(labels, minlength=k).double()
    return counts / counts.sum()


def label_by_clusters(dataset, k: int, seed: int, centres: torch.Tensor | None = None):
    """Replace `dataset.labels` by k-means clusters (or by the nearest of given `centres`, as on
    resume) and return the `Clustering`."""
    if centres is None:
        centres, labels = kmeans(dataset.x, k, seed)
    else:
        labels = assign(dataset.x, centres)
    dataset.labels = labels
    return Clustering(centres, proportions(labels, k))


def mode_seeking_term(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """MSGAN's G term (Mao et al. 2019) for a batch whose two halves are pairs of one label:
    1 / (mean |fake₁ − fake₂| / mean |z₁ − z₂| + ε); large when two noises give one image."""
    half = len(fake) // 2
    if half == 0:
        raise ConfigError("model.mode_seeking needs a generator batch of at least 2 samples")
    images = (fake[:half] - fake[half : 2 * half]).abs().mean()
    noises = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1.0 / (images / noises + MS_EPS)


def paired_labels(labels: torch.Tensor) -> torch.Tensor:
    """The labels with the second half replaced by the first (pairs of one cluster)."""
    half = len(labels) // 2
    out = labels.clone()
    out[half : 2 * half] = labels[:half]
    return out


def build(cfg, dataset, model_class: type | None = None):
    """The self-conditioned GAN and its batch provider (called by the conditional builder)."""
    from gankit.data.source import TensorBatches

    if model_class is not None:
        raise ConfigError(
            f"model.self_conditioned is not available for model.family = {cfg.model.family!r}; "
            "use cmlp or cdcgan"
        )
    clustering = label_by_clusters(dataset, int(cfg.model.num_classes), cfg.train.seed)
    model = SelfConditionedGAN(cfg, dataset, clustering)
    return model, TensorBatches(dataset, cfg.train.batch_size, cfg.train.seed)


class SelfConditionedGAN(ConditionalGAN):
    """The conditional GAN on cluster labels; samples draw clusters by their training share."""

    def __init__(self, cfg, dataset, clustering: Clustering) -> None:
        super().__init__(cfg, dataset)
        self.clustering = clustering

    def generator_inputs(self, labels: torch.Tensor, batches: Batches) -> tuple[torch.Tensor, ...]:
        """With `model.mode_seeking` = λ > 0, G's batch is pairs of one cluster (two noises)."""
        if float(self.cfg.model.mode_seeking) > 0:
            labels = paired_labels(labels)
        return labels, self.latent(batches)

    def generator_extra_loss(
        self, fake: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor | None, dict[str, float]]:
        """λ × `mode_seeking_term` (MSGAN) when `model.mode_seeking` = λ > 0."""
        weight = float(self.cfg.model.mode_seeking)
        if weight == 0:
            return None, {}
        term = mode_seeking_term(fake.float(), z)
        return weight * term, {"mode_seeking": float(term.detach())}

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """n samples from seeded noise; clusters drawn from the prior unless `conditions`."""
        labels = resolve_labels(conditions, n, self.num_classes, seed, self.clustering.prior)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self._generate(torch.randn(n, self.latent_dim, generator=gen), labels)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "cluster_centres": self.clustering.centres}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the run's state and its clusters exactly (labels from the saved centres)."""
        super().load_state_dict(state)
        centres = state.get("cluster_centres")
        if centres is None or tuple(centres.shape) != tuple(self.clustering.centres.shape):
            raise CheckpointError(
                "the checkpoint has no cluster centres of this shape; it was not written by a "
                "self-conditioned run with the same model.num_classes"
            )
        self.clustering = label_by_clusters(self.dataset, self.num_classes, 0, centres)

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), **self.clustering.spec()}
