"""`augment_images`: a folder with one sub-folder per class → a folder of generated images per
class, from a class-conditional DCGAN (the `cdcgan` family, `configs/digits-cgan.yaml`'s recipe,
plus DiffAugment translation, since such folders are often small) trained on that folder. The
trained run (weights, model.json, metrics) is kept beside the output (`OUT.model/`), so
`gankit sample OUT.model --class-grid` and `gankit.load_generator` reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gankit.errors import ConfigError, DataError

# configs/digits-cgan.yaml's recipe (projection D, class-conditional BN in G), as overrides
RECIPE = [
    "model.family=cdcgan",
    "model.conditioning=projection",
    "model.latent_dim=64",
    "model.g_width=64",
    "model.d_width=64",
    "model.init=dcgan",
    "objective.loss=non-saturating",
    "objective.augment=translation",  # DiffAugment (Zhao et al. 2020): D sees few images
    "train.lr_g=0.0002",
    "train.lr_d=0.0002",
    "train.betas=[0.5,0.999]",
    "train.ema=0.999",
]


def model_dir(out: str | os.PathLike) -> Path:
    """Where `gankit augment` keeps the model it trained: beside OUT, as OUT.model/."""
    out = Path(out)
    return out.with_name(out.stem + ".model")


def class_folders(folder: str | os.PathLike) -> list[str]:
    """The class sub-folders of `folder` (sorted, as `load_image_folder` labels them)."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise DataError(
            f"{root}: needs one sub-folder of images per class (at least 2), found {names}"
        )
    return names


def _channels(folder: Path) -> int:
    """1 when the first image is greyscale, else 3."""
    from PIL import Image

    from gankit.data.images import IMAGE_SUFFIXES

    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            with Image.open(path) as img:
                return 1 if img.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    raise DataError(f"{folder}: no images found")


def augment_images(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    per_class: int = 100,
    steps: int = 2000,
    seed: int = 0,
    image_size: int | None = None,
    batch_size: int = 64,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a conditional GAN on `folder` (one sub-folder per class) for `steps` steps, save it
    to `model_dir(out)`, and write `per_class` generated PNGs into `out/<class>/`.

    Returns {"classes": {class: images written}, "model": model dir, "real": {class: count}}.
    `overrides` are extra config overrides (`train.lr_g=1e-4`, ...) on top of the recipe."""
    from tqdm import tqdm

    import gankit
    from gankit.config import load_config
    from gankit.data.images import load_image_folder

    root, out = Path(folder), Path(out)
    if per_class < 1 or steps < 1:
        raise ConfigError(f"per_class and steps must be >= 1, got {per_class}, {steps}")
    names = class_folders(root)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; choose another output folder")
    run_dir = model_dir(out)
    if run_dir.exists():
        raise ConfigError(f"{run_dir} exists (a model from an earlier run); remove it or move OUT")
    channels = _channels(root)
    _, labels = load_image_folder(root, image_size, channels)  # checks sizes and readability
    real = {
        names[i]: int(c) for i, c in enumerate(np.bincount(labels.numpy(), minlength=len(names)))
    }
    cfg = load_config(
        None,
        [
            "data.name=folder",
            f"data.root={root}",
            f"data.channels={channels}",
            *([f"data.image_size={image_size}"] if image_size else []),
            *RECIPE,
            f"model.num_classes={len(names)}",
            f"train.steps={steps}",
            f"train.batch_size={min(batch_size, len(labels))}",  # a few images: all at once
            f"train.seed={seed}",
            f"train.progress={str(progress).lower()}",
            f"train.checkpoint_every={steps}",
            f"train.sample_every={steps}",
            f"train.log_every={max(1, steps // 20)}",
            *(overrides or []),
        ],
    )
    gankit.train(cfg, run_dir)
    gen = gankit.load_generator(run_dir)
    written = {}
    bar = tqdm(total=per_class * len(names), desc="writing images", disable=not progress)
    for i, name in enumerate(names):
        images = gen.sample(per_class, seed=seed * 1000 + i, labels=i)
        (out / name).mkdir(parents=True, exist_ok=True)
        for j, image in enumerate(images):
            save_png(image, out / name / f"generated-{j:05d}.png")
            bar.update(1)
        written[name] = len(images)
    bar.close()
    return {"classes": written, "model": str(run_dir), "real": real}


def save_png(image: Any, path: Path) -> None:
    """One image in [-1, 1] ([C, H, W], C = 1 or 3) as an 8-bit PNG."""
    from PIL import Image

    array = ((np.asarray(image, dtype=np.float32).clip(-1, 1) + 1) * 127.5).round()
    array = array.astype(np.uint8).transpose(1, 2, 0)
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
