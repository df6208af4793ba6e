"""The watchdog: stops (or rolls back) a run whose losses are not finite or whose
discriminator has won completely for a long stretch."""

from __future__ import annotations

import math


class Divergence(Exception):
    """Raised inside the loop; the trainer turns it into a rollback or a TrainingError."""


class Watchdog:
    """Callback that checks every step's statistics."""

    def __init__(self, d_win_patience: int) -> None:
        self.d_win_patience = d_win_patience
        self.streak = 0

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(stats.get(k, 0.0))]
        if bad:
            raise Divergence(f"{' and '.join(bad)} became {stats[bad[0]]} at step {trainer.step}")
        self.streak = self.streak + 1 if stats.get("d_perfect", 0.0) == 1.0 else 0
        if self.streak >= self.d_win_patience:
            raise Divergence(
                f"the discriminator separated every real and fake sample for {self.streak} "
                f"consecutive steps (up to step {trainer.step}): the generator gets no useful "
                "gradient; try a lower train.lr_d, objective.r1 or spectral_norm"
            )

    def reset(self) -> None:
        self.streak = 0

    def on_end(self, trainer) -> None:
        pass
