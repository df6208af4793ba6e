"""What a trial is scored by: gankit's metrics for runs, with their directions and protocols."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gankit.errors import (
    ConfigError,
)
from gankit.tune.space import did_you_mean

SCORE_SEED = 2333  # the fixed noise of the mixture benchmarks (PacGAN's MetricLogger)


TOY_SAMPLES = 2500  # samples scored on ring / grid, as in `gankit bench ring|grid`


@dataclass(frozen=True)
class Metric:
    """A figure a trial is scored by: its best direction, the data it applies to, its protocol."""

    direction: str
    data: tuple[str, ...]
    protocol: str


TOY = ("ring", "grid")


METRICS: dict[str, Metric] = {
    "modes": Metric("maximize", TOY, "modes with >= 1 HQ sample among 2,500 (seed 2333)"),
    "hq_percent": Metric("maximize", TOY, "% of 2,500 samples within 3σ of their nearest mean"),
    "reverse_kl": Metric("minimize", TOY, "KL(HQ histogram ‖ uniform), nats, 2,500 samples"),
    "modes_hq": Metric("maximize", TOY, "modes + %HQ/100: modes first, %HQ breaks ties"),
    "digits_fd": Metric(
        "minimize", ("digits",), "digits-FD of 360 samples against the train split"
    ),
    "precision": Metric("maximize", ("digits",), "precision (k=3), 360 samples, digits features"),
    "recall": Metric("maximize", ("digits",), "recall (k=3), 360 samples, digits features"),
    "stacked_modes": Metric(
        "maximize", ("stacked-digits",), "distinct digit triples of 2,500 samples (of 1,000)"
    ),
}


ESTIMATOR_SCORINGS = {
    "rmse": Metric("minimize", ("transform",), "RMSE on hidden observed entries, min-max scaled"),
    "fidelity": Metric("maximize", ("sample",), "column shapes and pair correlations vs the table"),
    "utility": Metric("maximize", ("sample",), "TSTR accuracy (mean of LR and RF) on a 30% split"),
}


def check_metric(name: str, data_name: str) -> Metric:
    """The metric called `name`, which must apply to `data_name`; else a ConfigError that lists
    the valid names."""
    if name not in METRICS:
        valid = [m for m, spec in METRICS.items() if data_name in spec.data] or list(METRICS)
        raise ConfigError(
            f"unknown metric {name!r}{did_you_mean(name, METRICS)}; for data.name = "
            f"{data_name!r} choose one of {', '.join(valid)}"
        )
    metric = METRICS[name]
    if data_name not in metric.data:
        valid = [m for m, spec in METRICS.items() if data_name in spec.data]
        choices = f"choose one of {', '.join(valid)}" if valid else "no tuning metric applies yet"
        raise ConfigError(
            f"metric {name!r} scores {'/'.join(metric.data)} runs, but this config trains on "
            f"data.name = {data_name!r}; {choices}"
        )
    return metric


def score_model(model: Any, cfg: Any) -> dict[str, float]:
    """Every tuning metric that applies to the config's data, for the model as it is now (its
    EMA generator when it keeps one; samples from fixed noise, seed 2333)."""
    import torch

    from gankit.config import to_dict

    name = cfg.data.name
    if name in TOY:
        from gankit.metrics import mixture_modes
        from gankit.metrics.evaluate import toy_mixture

        means, std = toy_mixture(to_dict(cfg)["data"])
        fake = torch.nan_to_num(model.sample(TOY_SAMPLES, seed=SCORE_SEED).float(), nan=1e6)
        r = mixture_modes(fake, means, std)
        scores = {k: float(r[k]) for k in ("modes", "hq_percent", "reverse_kl")}
        scores["modes_hq"] = scores["modes"] + scores["hq_percent"] / 100.0
        return scores
    if name == "digits":
        from gankit.metrics import frechet_distance, precision_recall

        ext, real = _digits_reference()
        fake = torch.nan_to_num(model.sample(360, seed=SCORE_SEED).float())
        ff = ext.features(fake)
        scores = {"digits_fd": frechet_distance(real=real, fake=ff)}
        scores.update(precision_recall(real=real, fake=ff, k=3))
        return {k: float(v) for k, v in scores.items()}
    if name == "stacked-digits":
        from gankit.metrics import classify_stacked, stacked_modes
        from gankit.metrics.features import digits_extractor

        fake = torch.nan_to_num(model.sample(TOY_SAMPLES, seed=SCORE_SEED).float())
        labels = classify_stacked(fake, digits_extractor().model)
        return {"stacked_modes": float(stacked_modes(labels)["modes"])}
    return {}


_DIGITS_CACHE: list = []


def _digits_reference():
    """The digits extractor and its features of the train split (computed once per process)."""
    if not _DIGITS_CACHE:
        from gankit.data import load_digits
        from gankit.metrics.features import digits_extractor

        ext = digits_extractor()
        real, _ = load_digits("train")
        _DIGITS_CACHE.append((ext, ext.features(real)))
    return _DIGITS_CACHE[0]


def finite_score(value: float, direction: str) -> float:
    """A non-finite score (a diverged generator) becomes the worst finite value."""
    if math.isfinite(value):
        return value
    return 1e12 if direction == "minimize" else -1e12
