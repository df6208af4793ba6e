"""InfoGAN code–class agreement: does the categorical code find the classes, without labels?

Q's categorical head classifies real held-out samples (argmax over the K code values); the code
values are matched one-to-one to the classes so that the most samples agree (the Hungarian
algorithm on the code × class contingency table, `scipy.optimize.linear_sum_assignment`), and
the value is the accuracy under that matching. Chance for 10 balanced classes is about 0.1 plus
what the matching picks up; 1.0 means every code value is one class. This is the unsupervised
"classification error" protocol of Chen et al. 2016 (5 % error on MNIST) and the clustering
accuracy of the deep-clustering literature.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gankit.errors import DataError
from gankit.metrics.records import MetricRecord


def contingency(codes: Any, labels: Any) -> np.ndarray:
    """Counts [code value, class] of paired integer `codes` and `labels` (DataError if unpaired,
    negative or not integers)."""
    codes, labels = np.asarray(codes), np.asarray(labels)
    if codes.ndim != 1 or codes.shape != labels.shape or len(codes) == 0:
        raise DataError(
            f"codes and labels must be two 1-d arrays of the same nonzero length, got shapes "
            f"{codes.shape} and {labels.shape}"
        )
    for name, a in (("codes", codes), ("labels", labels)):
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0:
            raise DataError(f"{name} must be non-negative integers, got dtype {a.dtype}")
    table = np.zeros((codes.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(table, (codes, labels), 1)
    return table


def best_matching(codes: Any, labels: Any) -> tuple[float, dict[int, int]]:
    """(accuracy, {code value: class}) under the one-to-one matching of code values to classes
    that maximises agreement (Hungarian algorithm; unmatched code values count as errors)."""
    from scipy.optimize import linear_sum_assignment

    table = contingency(codes, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    accuracy = float(table[rows, cols].sum() / table.sum())
    return accuracy, {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


def code_class_agreement(
    model: Any, x: Any = None, labels: Any = None, split: str = "test"
) -> MetricRecord:
    """Agreement of an InfoGAN's categorical code with the classes of real samples.

    `model` is an InfoGAN run or model directory (or a loaded `CodeClassifier`); `x`, `labels`
    the real samples in the model's data range and their classes, by default the digits'
    held-out split (`split`)."""
    from gankit.models.infogan import CodeClassifier, load_code_classifier

    classifier = model if isinstance(model, CodeClassifier) else load_code_classifier(model)
    source = "caller's samples"
    if x is None:
        from gankit.data import load_digits

        x, labels = load_digits(split)
        source = f"load_digits({split!r})"
    predicted = classifier.predict(x).numpy()
    accuracy, mapping = best_matching(predicted, np.asarray(labels))
    used = np.bincount(predicted, minlength=classifier.categorical)
    return MetricRecord(
        metric="code_class_agreement",
        value=accuracy,
        extractor="the model's own Q head (categorical logits)",
        extractor_sha256=classifier.spec.get("weights_sha256"),
        n_real=len(predicted),
        n_fake=0,
        seed=0,
        preprocessing="samples in the model's data range ([-1, 1] pixels)",
        details={"mapping": mapping, "code_counts": used.tolist(), "real": source},
        protocol=(
            f"argmax of Q's {classifier.categorical} categorical logits on {source}; code "
            "values matched one-to-one to classes by the Hungarian algorithm "
            "(scipy.optimize.linear_sum_assignment, maximum agreement); accuracy under it"
        ),
    )
