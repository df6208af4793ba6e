"""The engine: one loop trains every model family (see `gankit.engine.model` for the contract)."""

from gankit.engine.model import Batch, Batches, GenerativeModel
from gankit.engine.runs import resume, train
from gankit.engine.trainer import Run, Trainer

__all__ = ["Batch", "Batches", "GenerativeModel", "Run", "Trainer", "resume", "train"]
