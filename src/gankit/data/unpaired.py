"""Unpaired image domains for translation models (CycleGAN): `data.name: unpaired`.

Two sets of images, A and B, with no pairing between them: two folders of image files (read by
`load_image_folder`, so every format it reads), or a built-in pair made from scikit-learn's
digits (`data.domains`). The batch provider hands one batch of A as `Batch.x` and one batch of B
as `Batch.extra["b"]`; each domain has its own seeded permutation, so batch `i` depends only on
(seed, i) and resume is exact.

Built-in domains split a digits split in two halves at random (seeded): A is the first half as
it is, B the second half changed, so no image (nor its changed copy) is in both domains.
`digits-thick`: B's strokes are thickened (each pixel takes the larger of itself and 0.6 × its
brightest 4-neighbour: a one-pixel halo). `digits-mirror`: B is mirrored left to right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.errors import ConfigError, DataError

HALO = 0.6  # digits-thick: brightness of the one-pixel halo, relative to its neighbour
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
B_SEED_OFFSET = 7919  # domain B's batch order is seeded apart from domain A's


def mirror(x: torch.Tensor) -> torch.Tensor:
    """The domain change of `digits-mirror` (its own inverse): flip left to right."""
    return x.flip(-1)


def thicken(x: torch.Tensor) -> torch.Tensor:
    """The domain change of `digits-thick`: each pixel (in [0, 1]) becomes the larger of itself
    and `HALO` × its brightest 4-neighbour, so strokes grow a one-pixel halo."""
    u = (x + 1) / 2
    p = torch.nn.functional.pad(u, (1, 1, 1, 1))
    near = torch.stack(
        [p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2], p[..., 1:-1, 2:]]
    ).amax(0)
    return torch.maximum(u, HALO * near) * 2 - 1


BUILTIN_DOMAINS = {"digits-thick": thicken, "digits-mirror": mirror}
CHANGES = {"digits-thick": "strokes thickened by a one-pixel halo", "digits-mirror": "mirrored"}


@dataclass
class UnpairedDataset:
    """Images of domain A and of domain B, [N, C, H, W] in [-1, 1] (sizes may differ)."""

    a: torch.Tensor
    b: torch.Tensor
    name: str
    source: dict[str, Any]
    labels_a: torch.Tensor | None = None  # digits labels of the built-in domains
    labels_b: torch.Tensor | None = None

    @property
    def shape(self) -> list[int]:
        return list(self.a.shape[1:])

    is_image = True

    def spec(self) -> dict[str, Any]:
        """The data part of model.json."""
        return {
            "name": self.name,
            "shape": self.shape,
            "range": [-1, 1],
            "n_a": len(self.a),
            "n_b": len(self.b),
            **self.source,
        }


def split_digits(split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits split shuffled (seeded): (images, labels, permutation) whose first half is A."""
    from gankit.data.images import load_digits

    x, y = load_digits(split)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x, y, perm


def builtin_domains(domains: str, split: str = "train", seed: int = 0) -> UnpairedDataset:
    """A built-in pair of domains made from the digits (disjoint halves of one split)."""
    if domains not in BUILTIN_DOMAINS:
        raise ConfigError(
            f"data.domains = {domains!r} is not a built-in pair; choose one of "
            f"{', '.join(BUILTIN_DOMAINS)}, or give data.root_a and data.root_b folders"
        )
    x, y, perm = split_digits(split, seed)
    half = len(x) // 2
    ia, ib = perm[:half], perm[half:]
    source = {"domains": domains, "split": split, "seed": seed, "b_is": CHANGES[domains]}
    change = BUILTIN_DOMAINS[domains]
    return UnpairedDataset(x[ia], change(x[ib]), domains, source, y[ia], y[ib])


def folder_channels(root: Path) -> int:
    """1 when the first image under `root` is greyscale, else 3 (how the files are stored)."""
    from PIL import Image

    from gankit.data.images import IMAGE_SUFFIXES

    first = next((p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES), None)
    if first is None:
        return 0
    try:
        with Image.open(first) as img:
            if img.mode == "P":
                img = img.convert()
            return 1 if img.mode in GREY_MODES else 3
    except OSError as exc:
        raise DataError(f"{first}: unreadable image ({exc})") from exc


def _check_folder(key: str, root: str | None) -> Path:
    from gankit.data.images import IMAGE_SUFFIXES

    if not root:
        raise ConfigError(
            f"{key} is required for data.name = 'unpaired' (a folder of images), unless "
            f"data.domains names a built-in pair ({', '.join(BUILTIN_DOMAINS)})"
        )
    path = Path(root)
    if not path.is_dir():
        raise ConfigError(f"{key} = {root!r}: no such folder")
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
        raise ConfigError(
            f"{key} = {root!r}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return path


def folder_domains(cfg: Any) -> UnpairedDataset:
    """Domains A and B from `data.root_a` and `data.root_b` (ConfigError names what is wrong)."""
    from gankit.data.images import load_image_folder

    root_a = _check_folder("data.root_a", cfg.root_a)
    root_b = _check_folder("data.root_b", cfg.root_b)
    channels = cfg.channels
    if channels is None:
        ca, cb = folder_channels(root_a), folder_channels(root_b)
        if ca != cb:
            grey = {1: "greyscale (1 channel)", 3: "colour (3 channels)"}
            raise ConfigError(
                f"data.root_a holds {grey[ca]} images but data.root_b {grey[cb]}; set "
                "data.channels = 1 or 3 to convert both domains to one"
            )
        channels = ca
    a, _ = load_image_folder(root_a, cfg.image_size, channels)
    b, _ = load_image_folder(root_b, cfg.image_size, channels)
    if a.shape[1:] != b.shape[1:]:
        raise ConfigError(
            f"data.root_a images are {a.shape[-1]}×{a.shape[-2]} but data.root_b images "
            f"{b.shape[-1]}×{b.shape[-2]}; set data.image_size to resize both"
        )
    source = {"root_a": str(root_a), "root_b": str(root_b), "channels": channels}
    return UnpairedDataset(a.contiguous(), b.contiguous(), "unpaired", source)


def load_unpaired(cfg: Any) -> UnpairedDataset:
    """The two domains an `UnpairedDataConfig` describes."""
    if cfg.domains is not None:
        if cfg.root_a or cfg.root_b:
            raise ConfigError(
                "give either data.domains (a built-in pair) or data.root_a and data.root_b, "
                "not both"
            )
        data = builtin_domains(cfg.domains, cfg.split, cfg.seed)
        if cfg.image_size:
            from gankit.data.source import fit_size

            data.a, data.b = fit_size(data.a, cfg.image_size), fit_size(data.b, cfg.image_size)
        return data
    return folder_domains(cfg)


class UnpairedBatches:
    """Batch provider: `Batch(x=a batch of A, extra={"b": a batch of B})`, each domain in its
    own seeded epoch order (batch `i` is a function of (seed, i))."""

    def __init__(self, data: UnpairedDataset, batch_size: int, seed: int) -> None:
        from gankit.data.source import BatchSampler

        for key, x in (("A", data.a), ("B", data.b)):
            if batch_size > len(x):
                raise ConfigError(
                    f"train.batch_size = {batch_size} is larger than domain {key} "
                    f"({len(x)} images); lower it"
                )
        self.data = data
        self.sampler_a = BatchSampler(len(data.a), batch_size, seed)
        self.sampler_b = BatchSampler(len(data.b), batch_size, seed + B_SEED_OFFSET)

    def batch(self, index: int):
        from gankit.engine.model import Batch

        a = self.data.a[self.sampler_a.indices(index)]
        return Batch(a, None, {"b": self.data.b[self.sampler_b.indices(index)]})

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
