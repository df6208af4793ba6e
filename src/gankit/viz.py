"""Pictures: image grids, loss curves and 2-D scatter plots (Pillow and matplotlib)."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from gankit.modeldir import atomic_write_bytes


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] → [N, H, W, C] uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 1) -> np.ndarray:
    """Tile [N, C, H, W] images in [-1, 1] into one RGB uint8 array [H', W', 3]."""
    pixels = to_uint8(images)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    n, h, w, _ = pixels.shape
    ncol = nrow or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncol)
    grid = np.full(
        (nrows * (h + padding) + padding, ncol * (w + padding) + padding, 3), 255, dtype=np.uint8
    )
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    """Encode a uint8 array as PNG, optionally enlarged by nearest-neighbour `scale`."""
    from PIL import Image

    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_image(array: np.ndarray | torch.Tensor, path: str | os.PathLike, scale: int = 1) -> Path:
    """Save a grid (uint8 array) or a batch of images (tensor in [-1, 1]) as PNG, atomically."""
    if isinstance(array, torch.Tensor):
        array = make_grid(array)
    atomic_write_bytes(path, png_bytes(array, scale))
    return Path(path)


def read_history(metrics_path: str | os.PathLike) -> list[dict]:
    """The records of a metrics.jsonl file (missing file → empty). A line that is not a JSON
    object (a write torn by a kill or a full disk) is skipped."""
    path = Path(metrics_path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def _save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def plot_losses(history: list[dict], path: str | os.PathLike) -> Path:
    """Discriminator and generator losses against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = [h["step"] for h in history]
    for key, label in (("loss_d", "discriminator"), ("loss_g", "generator")):
        ax.plot(steps, [h.get(key, float("nan")) for h in history], label=label, lw=1)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save_figure(fig, path)


def plot_points(
    fake: torch.Tensor,
    path: str | os.PathLike,
    real: torch.Tensor | None = None,
    means: torch.Tensor | None = None,
    title: str = "",
) -> Path:
    """Scatter plot of 2-D samples over the real data / mixture means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:gray", alpha=0.3, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:blue", alpha=0.5, label="generated")
    if means is not None:
        ax.scatter(means[:, 0], means[:, 1], s=30, c="tab:red", marker="x", label="modes")
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    return _save_figure(fig, path)
