"""Things that happen around the loop: logging, sample grids, checkpoints, progress, TensorBoard.

Each callback has `on_step(trainer, stats)` and `on_end(trainer)`; the trainer calls them in
order after every generator step and knows nothing of what they do.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from gankit.viz import plot_losses, plot_points, read_history, save_image


class EMAUpdate:
    """Moves the EMA of the generator after every step (all ranks, before anything is saved)."""

    def __init__(self, ema, generator) -> None:
        self.ema, self.generator = ema, generator

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        self.ema.update(self.generator)

    def on_end(self, trainer) -> None:
        pass


def lr_scale(schedule: str, step: int, total: int) -> float:
    """The fraction of the configured learning rate to use after `step` of `total` steps."""
    progress = min(step / total, 1.0)
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


class LRDecay:
    """Sets both optimizers' LRs from the step alone (so a resumed run follows the same curve).

    Annealing the step size at the end settles the players near where they were oscillating;
    on the toy mixtures it is what turns a ring of smeared modes into tight ones.
    """

    def __init__(self, schedule: str) -> None:
        self.schedule = schedule

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        t = trainer.cfg.train
        scale = lr_scale(self.schedule, trainer.step, trainer.total_steps)
        scale *= t.rollback_lr_factor**trainer.rollbacks
        for base, optimizer in ((t.lr_g, trainer.opt_g), (t.lr_d, trainer.opt_d)):
            for group in optimizer.param_groups:
                group["lr"] = base * scale

    def on_end(self, trainer) -> None:
        pass


class MetricsLog:
    """Appends the step's statistics to metrics.jsonl every `every` steps."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, every
        self.start = time.perf_counter()

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if trainer.step % self.every == 0 or trainer.step == trainer.total_steps:
            record = {
                "step": trainer.step,
                "time": round(time.perf_counter() - self.start, 3),
                **{k: round(v, 6) for k, v in stats.items()},
            }
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def on_end(self, trainer) -> None:
        pass


class SampleGrid:
    """Saves samples from fixed noise every `every` steps (a grid, or a scatter for 2-D data)."""

    def __init__(self, directory: Path, every: int) -> None:
        self.directory, self.every = directory, every

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if trainer.step % self.every == 0 or trainer.step == trainer.total_steps:
            self.save(trainer)

    def save(self, trainer) -> Path:
        samples = trainer.fixed_samples()
        path = self.directory / f"step-{trainer.step:08d}.png"
        if samples.dim() == 4:
            return save_image(samples, path, scale=max(1, 64 // samples.shape[-1]))
        return plot_points(
            samples, path, real=trainer.dataset.x[:2000], title=f"step {trainer.step}"
        )

    def on_end(self, trainer) -> None:
        pass


class Checkpointer:
    """Writes state.pt and the model directory every `every` steps and at the end."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if trainer.step % self.every == 0 and trainer.step != trainer.total_steps:
            trainer.save_checkpoint()

    def on_end(self, trainer) -> None:
        trainer.save_checkpoint()
        history = read_history(trainer.run_dir / "metrics.jsonl")
        if history:
            plot_losses(history, trainer.run_dir / "loss_curve.png")


class Progress:
    """A tqdm bar with step/s and the current losses."""

    def __init__(self, total: int, initial: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        self.bar.update(1)
        if trainer.step % 10 == 0:
            self.bar.set_postfix(d=f"{stats['loss_d']:.3f}", g=f"{stats['loss_g']:.3f}")

    def on_end(self, trainer) -> None:
        self.bar.close()


class TensorBoard:
    """Scalars to TensorBoard (extra `track`)."""

    def __init__(self, directory: Path, every: int) -> None:
        from gankit.errors import require

        tb = require("torch.utils.tensorboard", "track")
        self.writer, self.every = tb.SummaryWriter(str(directory)), every

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if trainer.step % self.every == 0:
            for key, value in stats.items():
                self.writer.add_scalar(key, value, trainer.step)

    def on_end(self, trainer) -> None:
        self.writer.close()
