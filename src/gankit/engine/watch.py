"""The watchdog: stops (or rolls back) a run whose game has exploded or collapsed.

It reads only the statistics a step returns, so it watches every model alike:

* any statistic not finite (NaN, ±inf) → diverged, at once;
* in at least half of the last `collapse_patience` steps, the discriminator separated every
  real and fake sample by a huge margin (|logit gap| ≥ `SATURATED_GAP`: the generator's
  gradient has vanished) → collapsed. The bound does not grow with the run: an exploded
  learning rate (Adam or SGD at lr 10 on the ring) is caught within `collapse_patience` steps,
  whatever `train.steps` is;
* the discriminator separates every batch, at any margin, for `d_win_patience` steps → D won.
"""

from __future__ import annotations

import math
from collections import deque
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
        self.saturated: deque[int] = deque(maxlen=self.collapse_patience)  # 1 = saturated step

    def on_step(self, trainer, stats: dict[str, float]) -> None:
        bad = [k for k, v in stats.items() if not math.isfinite(v)]
        if bad:
            raise Divergence(f"{' and '.join(bad)} became {stats[bad[0]]} at step {trainer.step}")
        perfect = stats.get("d_perfect", 0.0) == 1.0
        gap = stats.get("d_real", 0.0) - stats.get("d_fake", 0.0)
        self.streak = self.streak + 1 if perfect else 0
        self.saturated.append(int(perfect and abs(gap) >= SATURATED_GAP))
        window = self.saturated.maxlen or 1
        if len(self.saturated) == window and 2 * sum(self.saturated) >= window:
            raise Divergence(
                f"the game collapsed: in {sum(self.saturated)} of the last {window} steps (up "
                f"to step {trainer.step}) the discriminator separated every sample by a logit "
                f"gap >= {SATURATED_GAP:g} (last: D(real) {stats.get('d_real', 0.0):.3g}, "
                f"D(fake) {stats.get('d_fake', 0.0):.3g}), so the generator gets no gradient; "
                "lower train.lr_d / train.lr_g, or add objective.r1 or model.spectral_norm"
            )
        if self.streak >= self.d_win_patience:
            raise Divergence(
                f"the discriminator separated every real and fake sample for {self.streak} "
                f"consecutive steps (up to step {trainer.step}): the generator gets no useful "
                "gradient; try a lower train.lr_d, objective.r1 or spectral_norm"
            )

    def reset(self) -> None:
        self.streak = 0
        self.saturated.clear()

    def on_end(self, trainer) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "saturated": list(self.saturated)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.streak = int(state.get("streak", 0))
        self.saturated.clear()
        self.saturated.extend(int(v) for v in state.get("saturated", []))
