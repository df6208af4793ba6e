"""`gankit bench progan`: ProGAN grown on the digits against the DCGAN recipe at equal CPU time.

Protocol. Per seed:

1. ProGAN, `configs/digits-progan.yaml` (8×8 digits grown 4 -> 8 px), trained through its whole
   schedule; its CPU time T (process time, one thread) is the budget.
2. DCGAN, `configs/digits-dcgan.yaml`, trained until it has used the same CPU time T (a
   callback stops it; its recipe would run 4,000 steps). CPU time rather than wall time: on a
   shared, loaded VM the wall clock measures the neighbours.
3. Both scored like `gankit bench digits`: digits-FD (the shipped classifier's features) of
   5 × 360 samples against the train split, averaged; the held-out split's FD is the floor.

`--quick` also grows `configs/digits32-progan.yaml` (digits upsampled to 32 px, 4 -> 32) for a
few steps; the full run grows it through its schedule for one seed (its samples are
average-pooled back to 8 px for digits-FD; the floor is the held-out digits through the same
8 -> 32 -> 8 round trip).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gankit.bench.common import format_table, mean_se

RECIPE, RECIPE32, DCGAN = "digits-progan.yaml", "digits32-progan.yaml", "digits-dcgan.yaml"
QUICK = ["train.steps=12", "model.phase_steps=4", "model.fade_steps=4", "model.widths=[8,8]"]
QUICK32 = ["train.steps=12", "model.phase_steps=2", "model.fade_steps=2", "model.widths=[8,8,4,4]"]
QUICK_DCGAN = ["model.g_width=8", "model.d_width=8"]
# the DCGAN recipe's EMA (0.999) spans its 4,000 steps; at a ~1,000-step budget it would still
# hold a third of the initial weights, so both models average over ~100 steps (0.99)
DCGAN_EMA = ["train.ema=0.99"]
CHUNKS = 5


class CPUBudget:
    """Stops a run once it has used `seconds` of process CPU time (counted from its start)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, 0.0

    def on_start(self, trainer) -> None:
        self.start = time.process_time()

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if time.process_time() - self.start >= self.seconds:
            trainer.should_stop = True

    def on_end(self, trainer) -> None:
        pass


def train(recipe: str, seed: int, extra: list[str], out: Path, budget: float | None = None):
    """Train a recipe for one seed; returns (model, CPU seconds, steps)."""
    from gankit.bench.images import CONFIGS
    from gankit.config import load_config
    from gankit.engine.runs import build_trainer

    overrides = [f"train.seed={seed}", "train.progress=false", *extra]
    cfg = load_config(CONFIGS / recipe, overrides)
    callbacks = [] if budget is None else [CPUBudget(budget)]
    trainer = build_trainer(cfg, out, callbacks=callbacks)
    start = time.process_time()
    trainer.fit()
    return trainer.model, time.process_time() - start, trainer.step


def digits_fd(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Mean digits-FD of held-out-sized chunks of `fake` [n, 1, 8, 8] against `real`."""
    from gankit.metrics import frechet_distance
    from gankit.metrics.features import digits_extractor

    ext = digits_extractor()
    fr, size = ext.features(real), 360
    chunks = [fake[i * size : (i + 1) * size] for i in range(max(1, len(fake) // size))]
    return sum(frechet_distance(real=fr, fake=ext.features(c)) for c in chunks) / len(chunks)


def to8(x: torch.Tensor) -> torch.Tensor:
    """Images back to 8×8 by average pooling (32 px -> 8 px)."""
    return x if x.shape[-1] == 8 else F.avg_pool2d(x, x.shape[-1] // 8)


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """ProGAN and DCGAN at equal CPU time per seed; the 32 px growth once."""
    from gankit.data import load_digits
    from gankit.models.progan import resize_to

    n_seeds = seeds or (1 if quick else 3)
    real, _ = load_digits("train")
    held, _ = load_digits("test")
    n_fake = len(held) * (1 if quick else CHUNKS)
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(n_seeds):
            pro, pro_cpu, pro_steps = train(
                RECIPE, seed, QUICK if quick else [], Path(tmp) / f"p{seed}"
            )
            dc, dc_cpu, dc_steps = train(
                DCGAN,
                seed,
                [*DCGAN_EMA, *(QUICK_DCGAN if quick else [])],
                Path(tmp) / f"d{seed}",
                pro_cpu,
            )
            row = {
                "progan_fd": digits_fd(pro.sample(n_fake, seed=seed), real),
                "dcgan_fd": digits_fd(dc.sample(n_fake, seed=seed), real),
                "progan_cpu_s": pro_cpu,
                "dcgan_cpu_s": dc_cpu,
                "progan_steps": pro_steps,
                "dcgan_steps": dc_steps,
            }
            per_seed.append(row)
            print(f"progan seed {seed}: {row}", file=sys.stderr, flush=True)
        extra32 = QUICK32 if quick else []
        p32, cpu32, steps32 = train(RECIPE32, 0, extra32, Path(tmp) / "p32")
        fd32 = digits_fd(to8(p32.sample(n_fake, seed=0)), real)
        print(f"progan32: fd {fd32:.3f}, {cpu32:.0f} s, {steps32} steps", file=sys.stderr)
    floor = digits_fd(held, real)
    floor32 = digits_fd(to8(resize_to(held, 32).clamp(-1, 1)), real)
    summary = {k: mean_se([r[k] for r in per_seed]) for k in per_seed[0]}

    def cell(key: str, digits: int = 3) -> str:
        mean, se = summary[key]
        return f"{mean:.{digits}f} ± {se:.{digits}f}"

    rows = [
        [
            "ProGAN 4 -> 8 px (digits-progan)",
            cell("progan_fd"),
            cell("progan_cpu_s", 0),
            cell("progan_steps", 0),
        ],
        [
            "DCGAN recipe, same CPU time",
            cell("dcgan_fd"),
            cell("dcgan_cpu_s", 0),
            cell("dcgan_steps", 0),
        ],
        ["held-out digits (floor)", f"{floor:.3f}", "-", "-"],
        [
            "ProGAN 4 -> 32 px (digits32-progan), seed 0",
            f"{fd32:.3f}",
            f"{cpu32:.0f}",
            f"{steps32}",
        ],
        ["held-out digits 8 -> 32 -> 8 (floor)", f"{floor32:.3f}", "-", "-"],
    ]
    table = format_table(["model", "digits-FD", "CPU s", "steps"], rows)
    return {
        "protocol": {
            "recipes": [f"configs/{RECIPE}", f"configs/{DCGAN}", f"configs/{RECIPE32}"],
            "overrides": {
                "progan": QUICK if quick else [],
                "dcgan": [*DCGAN_EMA, *(QUICK_DCGAN if quick else [])],
                "progan32": extra32,
            },
            "budget": "DCGAN stopped once it used the CPU time ProGAN's schedule took "
            "(time.process_time, one thread)",
            "digits_fd": f"{CHUNKS if not quick else 1} x 360 samples vs the train split, mean",
            "seeds": n_seeds,
        },
        "per_seed": per_seed,
        "summary": {k: {"mean": m, "se": s} for k, (m, s) in summary.items()},
        "progan32": {"fd": fd32, "cpu_s": cpu32, "steps": steps32, "floor": floor32},
        "heldout_floor": floor,
        "table": table,
    }
