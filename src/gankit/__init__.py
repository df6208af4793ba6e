"""gankit: train, evaluate and serve generative adversarial networks for images and tables.

The public API is re-exported here lazily: `import gankit` (and so `gankit --help`) does not
import torch; the first access to `gankit.train`, `gankit.load_generator`, ... imports the
module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gankit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GankitError,
    TrainingError,
)

__version__ = "0.1.0"

# public name -> module defining it (imported on first access)
_LAZY: dict[str, str] = {
    "Config": "gankit.config",
    "load_config": "gankit.config",
    "Generator": "gankit.generator",
    "load_generator": "gankit.generator",
    "evaluate": "gankit.metrics.evaluate",
    "Run": "gankit.engine",
    "resume": "gankit.engine",
    "train": "gankit.engine",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from gankit.config import Config, load_config
    from gankit.engine import Run, resume, train
    from gankit.generator import Generator, load_generator
    from gankit.metrics.evaluate import evaluate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gankit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
