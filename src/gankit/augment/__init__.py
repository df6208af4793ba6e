"""Augmentation: DiffAugment for image GANs, and generated rows for imbalanced tables.

- `DiffAugment`, `POLICIES`, `color`, `translation`, `cutout` (`gankit.augment.diffaugment`):
  differentiable augmentations applied to real and fake images inside the GAN's losses.
- `GANOverSampler` (`gankit.augment.oversampler`): an imbalanced-learn sampler that adds rows
  of the classes asked for, drawn from a TabularGAN or TabularVAE (needs the `augment` extra).
- `augment_images` (`gankit.augment.images`): a folder with one sub-folder per class -> a
  conditional GAN trained on it and a folder of generated images per class.

Names are imported on first use, so `import gankit.augment` (and `gankit augment --help`)
import neither torch nor imbalanced-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "POLICIES": "gankit.augment.diffaugment",
    "DiffAugment": "gankit.augment.diffaugment",
    "color": "gankit.augment.diffaugment",
    "cutout": "gankit.augment.diffaugment",
    "translation": "gankit.augment.diffaugment",
    "GANOverSampler": "gankit.augment.oversampler",
    "augment_images": "gankit.augment.images",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'gankit.augment' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
