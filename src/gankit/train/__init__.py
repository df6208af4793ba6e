"""Training: the loop, EMA, checkpoints, data parallelism and the watchdog."""

from gankit.train.trainer import Run, Trainer, resume, train

__all__ = ["Run", "Trainer", "resume", "train"]
