"""Metrics of class-conditional generators on the digits, each a `MetricRecord`.

* `conditional_accuracy`: draw `n_per_class` samples for every class and ask the shipped digits
  classifier which digit each one is; the value is the share classified as the requested class
  (details: per class, and the classifier's own accuracy on the real held-out split, the
  ceiling a perfect generator would reach).
* `intra_class_fd`: the digits-FD of each class's samples against that class's real train
  digits, averaged over classes, with its real floor (each class of the held-out split scored
  the same way). The sets have the held-out split's per-class size (~36), so both numbers carry
  the same small-sample bias and only their ratio is meaningful.
* `classification_accuracy_score` (CAS, Ravuri & Vinyals 2019): train a fixed classifier on
  generated labelled samples only and test it on the real held-out split; beside it the same
  classifier trained on the real train split (TRS, "train on real"). The classifier is
  scikit-learn's multinomial logistic regression on the 64 pixels (fixed settings below), so
  the score is cheap and has no dependence on the digits classifier the other metric uses.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from gankit.errors import ConfigError
from gankit.metrics.records import MetricRecord

DIGITS_SHAPE = (1, 8, 8)
CAS_CLASSIFIER = "sklearn LogisticRegression(C=0.1, max_iter=500) on the 64 pixels in [-1, 1]"


def _check_digits_generator(generator: Any) -> int:
    k = generator.num_classes
    if k is None:
        raise ConfigError("conditional metrics need a class-conditional generator (num_classes)")
    if tuple(generator.output_shape) != DIGITS_SHAPE or k != 10:
        raise ConfigError(
            f"conditional metrics use the digits classifier: they need 10 classes of "
            f"{list(DIGITS_SHAPE)} images, got {k} classes of {list(generator.output_shape)}"
        )
    return k


def class_samples(
    generator: Any, n_per_class: int, seed: int, batch: int = 2000
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_per_class` samples of every class (class-major order) and their labels."""
    k = generator.num_classes
    labels = torch.arange(k).repeat_interleave(n_per_class)
    parts = [
        generator.sample(len(chunk), seed=seed + i, labels=chunk)
        for i, chunk in enumerate(labels.split(batch))
    ]
    return torch.cat(parts).float(), labels


def conditional_accuracy(generator: Any, n_per_class: int = 500, seed: int = 0) -> MetricRecord:
    """Share of samples the digits classifier assigns to the class they were drawn for."""
    from gankit.data import load_digits
    from gankit.metrics.features import digits_extractor

    k = _check_digits_generator(generator)
    fake, labels = class_samples(generator, n_per_class, seed)
    ext = digits_extractor()
    hit = ext.logits(fake).argmax(1) == labels
    per_class = [float(hit[labels == c].float().mean()) for c in range(k)]
    held_x, held_y = load_digits("test")
    ceiling = float((ext.logits(held_x).argmax(1) == held_y).float().mean())
    return MetricRecord(
        metric="conditional_accuracy",
        value=float(hit.float().mean()),
        extractor=ext.name,
        extractor_sha256=ext.sha256,
        n_real=len(held_x),
        n_fake=len(fake),
        seed=seed,
        preprocessing=ext.preprocessing,
        protocol=(
            f"{n_per_class} samples per class (seeds from {seed}); share the shipped digits "
            "classifier assigns to the requested class; real_accuracy = the classifier on the "
            "held-out split"
        ),
        details={"per_class": per_class, "real_accuracy": ceiling, "n_per_class": n_per_class},
    )


def _logistic_accuracy(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=0.1, max_iter=500)
    clf.fit(train_x.reshape(len(train_x), -1).double().numpy(), train_y.numpy())
    return float(clf.score(test_x.reshape(len(test_x), -1).double().numpy(), test_y.numpy()))


@functools.cache
def intra_class_floor() -> tuple[float, ...]:
    """Per class k: digits-FD of the held-out class-k digits against the train class-k ones."""
    import warnings

    from gankit.data import load_digits
    from gankit.metrics import frechet_distance
    from gankit.metrics.features import digits_extractor

    ext = digits_extractor()
    real, real_y = load_digits("train")
    held, held_y = load_digits("test")
    fr, fh = ext.features(real), ext.features(held)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer samples than feature dimensions
        return tuple(
            frechet_distance(real=fr[real_y == c], fake=fh[held_y == c]) for c in range(10)
        )


def intra_class_fd(generator: Any, seed: int = 0, chunks: int = 5) -> MetricRecord:
    """Mean over classes of FD(train split of class k, generated class k), beside its floor."""
    import warnings

    from gankit.data import load_digits
    from gankit.metrics import frechet_distance
    from gankit.metrics.features import digits_extractor

    k = _check_digits_generator(generator)
    ext = digits_extractor()
    real, real_y = load_digits("train")
    held, held_y = load_digits("test")
    fr = ext.features(real)
    floor = intra_class_floor()
    fake_fd = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer samples than feature dimensions: biased alike
        for c in range(k):
            size = int((held_y == c).sum())
            per_chunk = [
                frechet_distance(
                    real=fr[real_y == c],
                    fake=ext.features(generator.sample(size, seed=seed + 97 * j + c, labels=c)),
                )
                for j in range(chunks)
            ]
            fake_fd.append(sum(per_chunk) / chunks)
    value, floor_value = sum(fake_fd) / k, sum(floor) / k
    return MetricRecord(
        metric="intra_fd",
        value=value,
        extractor=ext.name,
        extractor_sha256=ext.sha256,
        n_real=len(real),
        n_fake=chunks * len(held),
        seed=seed,
        preprocessing=ext.preprocessing,
        protocol=(
            "per class k: digits-FD of the train digits of class k against generated class-k "
            f"sets of the held-out split's class-k size (mean over {chunks} sets), averaged "
            "over classes; floor = the held-out split's class k scored the same way"
        ),
        details={
            "per_class": fake_fd,
            "floor": floor_value,
            "floor_per_class": list(floor),
            "ratio_to_floor": value / floor_value,
        },
    )


@functools.cache
def train_on_real_accuracy() -> float:
    """The CAS classifier trained on the real train split, tested on the held-out split."""
    import warnings

    from gankit.data import load_digits

    train_x, train_y = load_digits("train")
    held_x, held_y = load_digits("test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of lbfgs at max_iter
        return _logistic_accuracy(train_x, train_y, held_x, held_y)


def classification_accuracy_score(
    generator: Any, n_per_class: int = 500, seed: int = 0
) -> MetricRecord:
    """CAS: a classifier trained on generated labelled digits, tested on real held-out ones."""
    import warnings

    from gankit.data import load_digits
    from gankit.metrics.features import PixelExtractor

    _check_digits_generator(generator)
    fake, labels = class_samples(generator, n_per_class, seed)
    held_x, held_y = load_digits("test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of lbfgs at max_iter
        cas = _logistic_accuracy(fake, labels, held_x, held_y)
    trs = train_on_real_accuracy()
    pix = PixelExtractor()
    return MetricRecord(
        metric="cas",
        value=cas,
        extractor=pix.name,
        extractor_sha256=None,
        n_real=len(held_x),
        n_fake=len(fake),
        seed=seed,
        preprocessing="pixels in [-1, 1], flattened (64-d)",
        protocol=(
            f"Ravuri & Vinyals 2019: {CAS_CLASSIFIER} trained on {n_per_class} generated "
            "samples per class, accuracy on the real held-out split; train_on_real = the same "
            "classifier trained on the 1437 real train digits (load_digits('train'))"
        ),
        details={"train_on_real": trs, "n_per_class": n_per_class},
    )
