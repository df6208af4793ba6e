"""Metrics computed from features: FD/FID, KID, IS, precision/recall, density/coverage, Parzen,
mode coverage and memorisation. Every function is plain float64 torch and testable offline; the
feature extractors live in `gankit.metrics.features`.
"""

from gankit.metrics.codes import best_matching, code_class_agreement
from gankit.metrics.fid import FeatureStats, frechet_distance
from gankit.metrics.inception_score import inception_score
from gankit.metrics.kid import kernel_inception_distance
from gankit.metrics.memorization import memorization, nearest_neighbours
from gankit.metrics.modes import classify_stacked, mixture_modes, stacked_modes
from gankit.metrics.parzen import parzen_log_likelihood, parzen_window
from gankit.metrics.prdc import density_coverage, prdc, precision_recall
from gankit.metrics.records import MetricRecord

__all__ = [
    "FeatureStats",
    "MetricRecord",
    "best_matching",
    "classify_stacked",
    "code_class_agreement",
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
