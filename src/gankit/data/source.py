"""Config-driven dataset loading and a resumable minibatch sampler."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.data.images import (
    check_finite,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_mnist,
)
from gankit.data.stacked import stacked_code
from gankit.data.toy import GRID_PRESET, RING_PRESET, sample_grid, sample_ring, sample_swiss_roll
from gankit.errors import DataError


@dataclass
class Dataset:
    """Training samples as one tensor, with what a model directory must know about them."""

    x: torch.Tensor
    labels: torch.Tensor | None
    name: str

    @property
    def shape(self) -> list[int]:
        return list(self.x.shape[1:])

    def spec(self) -> dict:
        """The data part of model.json."""
        return {
            "name": self.name,
            "shape": self.shape,
            "range": [-1, 1] if self.is_image else None,
            "n": len(self.x),
        }

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4


def load_dataset(cfg) -> Dataset:
    """The dataset described by a `DataConfig`."""
    name = cfg.name
    labels = None
    if name == "digits":
        x, labels = load_digits(cfg.split)
    elif name in ("mnist", "fashion-mnist"):
        x, labels = load_mnist(cfg.root, cfg.split, cfg.download, variant=name)
    elif name == "cifar10":
        x, labels = load_cifar10(cfg.root, cfg.split, cfg.download)
    elif name == "folder":
        x, labels = load_image_folder(cfg.root, cfg.image_size, cfg.channels)
    elif name == "ring":
        std = cfg.std if cfg.std is not None else RING_PRESET["std"]
        x = sample_ring(cfg.n_samples, cfg.modes, cfg.radius, std, cfg.seed)
    elif name == "grid":
        std = cfg.std if cfg.std is not None else GRID_PRESET["std"]
        x = sample_grid(cfg.n_samples, cfg.size, cfg.spacing, std, cfg.seed)
    elif name == "stacked-digits":
        from gankit.data.stacked import stacked_digits

        x, triples = stacked_digits(cfg.n_samples, cfg.split, cfg.seed)
        labels = stacked_code(triples)
    elif name == "swiss-roll":
        x = sample_swiss_roll(cfg.n_samples, seed=cfg.seed)
    else:
        raise DataError(f"unknown data.name {name!r}")
    check_finite(x, f"dataset {name!r}")
    if x.dim() == 4 and cfg.image_size and name != "folder":
        x = fit_size(x, cfg.image_size)
    return Dataset(x.contiguous(), labels, name)


def fit_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square images to `size`: pad with the background value (-1) when larger, else resize."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if size >= h and size >= w and (size - h) % 2 == 0 and (size - w) % 2 == 0:
        ph, pw = (size - h) // 2, (size - w) // 2
        return F.pad(x, (pw, pw, ph, ph), value=-1.0)
    return F.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    ).clamp(-1, 1)


class BatchSampler:
    """Minibatches drawn epoch by epoch from fixed permutations, indexed by a counter.

    Batch `c` depends only on (seed, c), so resuming at a counter reproduces the exact batches an
    uninterrupted run would have drawn. Under data parallelism every rank computes the same global
    batch and takes its own slice.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size > n:
            raise DataError(f"batch_size {batch_size} is larger than the dataset ({n} samples)")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, counter: int) -> torch.Tensor:
        """Global indices of batch number `counter`."""
        epoch, pos = divmod(counter, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=gen)
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]


class TensorBatches:
    """The batch provider of a dataset held in memory: batch `i` is a function of (seed, i)."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int) -> None:
        self.dataset = dataset
        self.sampler = BatchSampler(len(dataset.x), batch_size, seed)

    def batch(self, index: int):
        from gankit.engine.model import Batch

        idx = self.sampler.indices(index)
        labels = None if self.dataset.labels is None else self.dataset.labels[idx]
        return Batch(self.dataset.x[idx], labels)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
