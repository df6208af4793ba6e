"""Things that happen around the loop: EMA, LR schedules, early stopping, logs, sample grids,
checkpoints, progress, TensorBoard.

A callback has `on_step(trainer, stats)` and `on_end(trainer)`; one that owns state that must
survive a resume also has a `key` and `state_dict()` / `load_state_dict()`, and the trainer
puts that state in `state.pt`. The trainer calls callbacks in order after every step and knows
nothing of what they do.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gankit.engine.ema import EMA
from gankit.viz import plot_losses, plot_points, read_history, save_image


class Callback:
    """No-op defaults (`on_start` runs once before the first step, after any resume)."""

    def on_start(self, trainer) -> None:
        pass

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        pass

    def on_end(self, trainer) -> None:
        pass


class EMAUpdate(Callback):
    """Keeps an exponential moving average of one named network of the model (all ranks,
    before anything is saved); the model samples from it."""

    def __init__(self, model, network: str, decay: float) -> None:
        self.key = f"ema:{network}"
        self.ema = EMA(model.networks[network], decay)
        self.model, self.network = model, network
        model.averages[network] = self.ema.shadow

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        self.ema.update(self.model.networks[self.network])

    def state_dict(self) -> dict[str, Any]:
        return self.ema.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.ema.load_state_dict(state)


def lr_scale(schedule: str, step: int, total: int) -> float:
    """The fraction of the configured learning rate to use after `step` of `total` steps."""
    progress = min(step / total, 1.0)
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


class LRDecay(Callback):
    """Sets the schedule factor of every learning rate from the step alone (so a resumed run
    follows the same curve); the trainer's `rates` combine it with any rollback factor.

    Annealing the step size at the end settles the players near where they were oscillating;
    on the toy mixtures it is what turns a ring of smeared modes into tight ones.
    """

    def __init__(self, schedule: str) -> None:
        self.schedule = schedule

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        trainer.rates.set_schedule(lr_scale(self.schedule, trainer.step, trainer.total_steps))


class EarlyStopping(Callback):
    """Every `every` steps, scores the model; keeps the best weights of one network; stops the
    run `patience` steps after the last improvement and restores the best weights at the end.

    `score()` returns a number where higher is better (negate an error); a new score must beat
    the best by the relative margin `min_gain` to count. With `at_start`, the untrained model is
    scored first, so "step 0" can win (the network then ends as it started).
    """

    key = "early_stopping"

    def __init__(
        self,
        score: Callable[[], float],
        network: str,
        every: int,
        patience: int,
        min_gain: float = 0.0,
        at_start: bool = False,
    ) -> None:
        self.score, self.network = score, network
        self.every, self.patience, self.min_gain = every, patience, min_gain
        self.at_start = at_start
        self.best = -math.inf
        self.best_step: int | None = None
        self.best_state: dict[str, Any] | None = None
        self.history: list[dict[str, float]] = []

    def _target(self, trainer):
        return trainer.model.sampling_network(self.network)

    def _consider(self, trainer, step: int) -> None:
        value = float(self.score())
        self.history.append({"step": step, "score": value})
        margin = abs(self.best) * self.min_gain if math.isfinite(self.best) else 0.0
        if value > self.best + margin:
            self.best, self.best_step = value, step
            self.best_state = copy.deepcopy(self._target(trainer).state_dict())

    def on_start(self, trainer) -> None:
        if self.at_start and not self.history:  # a resumed run already has its history
            self._consider(trainer, trainer.step)

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if trainer.step % self.every:
            return
        self._consider(trainer, trainer.step)
        if self.best_step is not None and trainer.step - self.best_step >= self.patience:
            trainer.should_stop = True

    def on_end(self, trainer) -> None:
        if self.best_state is not None:
            self._target(trainer).load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": -1 if self.best_step is None else self.best_step,
            "best_state": self.best_state or {},
            "history": [[h["step"], h["score"]] for h in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.best = float(state["best"])
        self.best_step = None if state["best_step"] < 0 else int(state["best_step"])
        self.best_state = state["best_state"] or None
        self.history = [{"step": int(s), "score": float(v)} for s, v in state["history"]]


class MetricsLog(Callback):
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


def truncate_history(path: Path, step: int) -> None:
    """Keep the metrics logged up to `step` (a resume logs the rest again); a torn line left by
    a kill or a full disk is dropped."""
    if path.is_file():
        from gankit.modeldir import atomic_write_bytes

        keep = [json.dumps(r) for r in read_history(path) if r["step"] <= step]
        atomic_write_bytes(path, "".join(line + "\n" for line in keep).encode())


class SampleGrid(Callback):
    """Saves the model's preview every `every` steps (a grid, or a scatter for 2-D points)."""

    def __init__(self, directory: Path, every: int) -> None:
        self.directory, self.every = directory, every

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if trainer.step % self.every == 0 or trainer.step == trainer.total_steps:
            self.save(trainer)

    def save(self, trainer) -> Path | None:
        preview = trainer.model.preview()
        if preview is None:
            return None
        samples, reference = preview
        path = self.directory / f"step-{trainer.step:08d}.png"
        if samples.dim() == 4:
            return save_image(samples, path, scale=max(1, 64 // samples.shape[-1]))
        return plot_points(samples, path, real=reference, title=f"step {trainer.step}")


class Checkpointer(Callback):
    """Writes state.pt and the model directory every `every` steps and at the end."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        if trainer.step % self.every == 0 and trainer.step != trainer.total_steps:
            trainer.save_checkpoint()

    def on_end(self, trainer) -> None:
        trainer.save_checkpoint()
        if not trainer.ctx.is_main:
            return
        history = read_history(trainer.run_dir / "metrics.jsonl")
        if history:
            plot_losses(history, trainer.run_dir / "loss_curve.png")


class Progress(Callback):
    """A tqdm bar with step/s and the current losses."""

    def __init__(self, total: int, initial: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        self.bar.update(1)
        if trainer.step % 10 == 0:
            losses = {k.removeprefix("loss_"): f"{v:.3f}" for k, v in stats.items() if "loss" in k}
            self.bar.set_postfix(losses)

    def on_end(self, trainer) -> None:
        self.bar.close()


class TensorBoard(Callback):
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
