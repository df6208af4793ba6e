"""The watchdog: stops (or rolls back) a run whose game has exploded or collapsed.

It reads only the statistics a step returns, so it watches every model alike:

* any statistic not finite (NaN, ±inf) → diverged, at once;
* the discriminator separates every real and fake sample with a huge margin (|logit gap| ≥
  `SATURATED_GAP`, so the generator's gradient has vanished) for `collapse_patience` steps in
  a row → collapsed; this bound does not grow with the run (an exploded learning rate is
  caught within a few dozen steps, whatever `train.steps` is);
* the discriminator separates every batch, at any margin, for `d_win_patience` steps → D won.
"""

from __future__ import annotations

import math
from typing import Any

SATURATED_GAP = 20.0  # logits: sigmoid(-20) ≈ 2e-9, no useful gradient is left for G


class Divergence(Exception):
    """Raised inside the loop; the trainer turns it into a rollback or a TrainingError."""


class Watchdog:
    """Callback that checks every step's statistics."""

    key = "watchdog"

    def __init__(self, settings: Any) -> None:
        self.d_win_patience = settings.d_win_patience
        self.collapse_patience = settings.collapse_patience
        self.streak = 0  # steps in a row with D perfect
        self.saturated = 0  # steps in a row with D perfect by a saturating margin

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        bad = [k for k, v in stats.items() if not math.isfinite(v)]
        if bad:
            raise Divergence(f"{' and '.join(bad)} became {stats[bad[0]]} at step {trainer.step}")
        perfect = stats.get("d_perfect", 0.0) == 1.0
        gap = stats.get("d_real", 0.0) - stats.get("d_fake", 0.0)
        self.streak = self.streak + 1 if perfect else 0
        self.saturated = self.saturated + 1 if perfect and abs(gap) >= SATURATED_GAP else 0
        if self.saturated >= self.collapse_patience:
            raise Divergence(
                f"the game collapsed: for {self.saturated} consecutive steps (up to step "
                f"{trainer.step}) the discriminator separated every sample with a logit gap of "
                f"{gap:.3g} (D(real) {stats.get('d_real', 0.0):.3g}, D(fake) "
                f"{stats.get('d_fake', 0.0):.3g}), so the generator gets no gradient; lower "
                "train.lr_d / train.lr_g or add objective.r1 or model.spectral_norm"
            )
        if self.streak >= self.d_win_patience:
            raise Divergence(
                f"the discriminator separated every real and fake sample for {self.streak} "
                f"consecutive steps (up to step {trainer.step}): the generator gets no useful "
                "gradient; try a lower train.lr_d, objective.r1 or spectral_norm"
            )

    def reset(self) -> None:
        self.streak = self.saturated = 0

    def on_end(self, trainer) -> None:
        pass

    def state_dict(self) -> dict[str, int]:
        return {"streak": self.streak, "saturated": self.saturated}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.streak = int(state.get("streak", 0))
        self.saturated = int(state.get("saturated", 0))
