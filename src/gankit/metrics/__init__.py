"""Metrics computed from features: FD/FID, KID, IS, precision/recall, density/coverage, Parzen,
mode coverage and memorisation. Every function is plain float64 torch and testable offline; the
feature extractors live in `gankit.metrics.features`.

The names below are imported on first access, so `gankit.metrics.commands` (the CLI parser)
loads without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "FeatureStats": "gankit.metrics.fid",
    "frechet_distance": "gankit.metrics.fid",
    "inception_score": "gankit.metrics.inception_score",
    "kernel_inception_distance": "gankit.metrics.kid",
    "memorization": "gankit.metrics.memorization",
    "nearest_neighbours": "gankit.metrics.memorization",
    "classify_stacked": "gankit.metrics.modes",
    "mixture_modes": "gankit.metrics.modes",
    "stacked_modes": "gankit.metrics.modes",
    "parzen_log_likelihood": "gankit.metrics.parzen",
    "parzen_window": "gankit.metrics.parzen",
    "density_coverage": "gankit.metrics.prdc",
    "prdc": "gankit.metrics.prdc",
    "precision_recall": "gankit.metrics.prdc",
    "MetricRecord": "gankit.metrics.records",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from gankit.metrics.fid import FeatureStats, frechet_distance
    from gankit.metrics.inception_score import inception_score
    from gankit.metrics.kid import kernel_inception_distance
    from gankit.metrics.memorization import memorization, nearest_neighbours
    from gankit.metrics.modes import classify_stacked, mixture_modes, stacked_modes
    from gankit.metrics.parzen import parzen_log_likelihood, parzen_window
    from gankit.metrics.prdc import density_coverage, prdc, precision_recall
    from gankit.metrics.records import MetricRecord


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gankit.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "FeatureStats",
    "MetricRecord",
    "classify_stacked",
    "density_coverage",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "memorization",
    "mixture_modes",
    "nearest_neighbours",
    "parzen_log_likelihood",
    "parzen_window",
    "prdc",
    "precision_recall",
    "stacked_modes",
]
