"""gankit: train, evaluate and serve generative adversarial networks for images and tables."""

__version__ = "0.1.0"

from gankit.config import Config, load_config
from gankit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GankitError,
    TrainingError,
)
from gankit.generator import Generator, load_generator
from gankit.metrics.evaluate import evaluate
from gankit.train import Run, resume, train

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "GankitError",
    "Generator",
    "Run",
    "TrainingError",
    "__version__",
    "evaluate",
    "load_config",
    "load_generator",
    "resume",
    "train",
]
