"""The one owner of every optimizer's learning rate.

A rate is base × schedule factor × rollback factor. The LR schedule callback sets the schedule
factor, a rollback after divergence sets the rollback factor, and nothing else writes
`param_groups[...]["lr"]`, so neither undoes the other and a resumed run follows the same curve.
"""

from __future__ import annotations

from typing import Any

import torch


class LearningRates:
    """Base rates captured from the optimizers when they are built."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers
        self.base = {
            name: [float(group["lr"]) for group in opt.param_groups]
            for name, opt in optimizers.items()
        }
        self.schedule, self.rollback = 1.0, 1.0

    def set_schedule(self, factor: float) -> None:
        self.schedule = float(factor)
        self.apply()

    def set_rollback(self, factor: float) -> None:
        self.rollback = float(factor)
        self.apply()

    def apply(self) -> None:
        scale = self.schedule * self.rollback
        for name, opt in self.optimizers.items():
            for group, base in zip(opt.param_groups, self.base[name], strict=True):
                group["lr"] = base * scale

    def current(self, name: str) -> float:
        """The rate of the first parameter group of optimizer `name`."""
        return float(self.optimizers[name].param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "rollback": self.rollback}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule = float(state.get("schedule", 1.0))
        self.rollback = float(state.get("rollback", 1.0))
        self.apply()
