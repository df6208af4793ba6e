"""`make demo`: train the digits DCGAN for about two minutes, then write pictures and a report."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from gankit.config import load_config
from gankit.engine import train
from gankit.generator import load_generator
from gankit.viz import make_grid, save_image

CONFIG_DIRS = (Path(__file__).parent / "configs", Path(__file__).parents[2] / "configs")


def demo_config() -> Path:
    """The demo recipe: packaged with the wheel, or in the source checkout."""
    for folder in CONFIG_DIRS:
        if (folder / "digits-dcgan.yaml").is_file():
            return folder / "digits-dcgan.yaml"
    raise FileNotFoundError("digits-dcgan.yaml not found in " + ", ".join(map(str, CONFIG_DIRS)))


def run_demo(out: str | Path = "runs/demo", steps: int | None = None, fresh: bool = True) -> Path:
    """Train the demo model into `out` and write samples.png and interpolation.png beside it."""
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    overrides = [f"train.steps={steps}"] if steps else []
    cfg = load_config(demo_config(), overrides)
    train(cfg, out)
    gen = load_generator(out)
    save_image(make_grid(gen.sample(100, seed=0), nrow=10), out / "samples.png", scale=4)
    strips = [gen.interpolate(10, seed=s) for s in range(6)]
    import torch

    save_image(make_grid(torch.cat(strips), nrow=10), out / "interpolation.png", scale=4)
    _write_report(out)
    print(
        f"demo finished: {out}/samples.png, {out}/interpolation.png, {out}/loss_curve.png",
        file=sys.stderr,
    )
    return out


def _write_report(out: Path) -> None:
    """The evaluation report, when the metrics module is installed with this version."""
    try:
        from gankit.report import write_report
    except ImportError:
        return
    path = write_report(out)
    print(f"report: {path}", file=sys.stderr)
