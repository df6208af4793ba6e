"""Datasets: bundled digits, toy 2-D mixtures, real image formats, and a config-driven loader."""

from gankit.data.images import (
    check_finite,
    download_dataset,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_mnist,
    read_idx,
)
from gankit.data.toy import (
    grid_means,
    ring_means,
    sample_grid,
    sample_mixture,
    sample_ring,
    sample_swiss_roll,
)

__all__ = [
    "check_finite",
    "download_dataset",
    "grid_means",
    "load_cifar10",
    "load_digits",
    "load_image_folder",
    "load_mnist",
    "read_idx",
    "ring_means",
    "sample_grid",
    "sample_mixture",
    "sample_ring",
    "sample_swiss_roll",
]
