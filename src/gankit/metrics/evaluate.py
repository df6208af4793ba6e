"""`gankit.evaluate(run_dir)`: every metric that fits the run's data, as records, into eval.json.

Which metrics run depends on the generator's data (model.json `data.name` / `data.shape`):

- digits ([1, 8, 8]): digits-FD, KID and IS with the shipped digits classifier; precision/recall
  (k = 3) and density/coverage (k = 5) on its features; the Parzen window on pixels in [0, 1];
  memorisation on pixels. Real = `load_digits("train")`, held-out = `load_digits("test")`.
- stacked digits ([3, 8, 8]): distinct triples and KL to uniform, each channel classified.
- ring / grid (2-D): modes captured, % high quality, reverse KL; FD and P/R on the raw points
  against as many fresh samples of the true mixture.
- other images: FID/KID/IS/PRDC with Inception-v3, only when `inception_weights` is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from gankit.errors import ConfigError
from gankit.metric_names import ALL_METRICS
from gankit.metrics.fid import frechet_distance
from gankit.metrics.inception_score import inception_score
from gankit.metrics.kid import kernel_inception_distance
from gankit.metrics.memorization import memorization
from gankit.metrics.modes import classify_stacked, mixture_modes, stacked_modes
from gankit.metrics.parzen import parzen_window
from gankit.metrics.prdc import density_coverage, precision_recall
from gankit.metrics.records import MetricRecord

EVAL_FILE = "eval.json"
TOY_STD = {"ring": 0.01, "grid": 0.05}


def run_data(spec: dict[str, Any]) -> dict[str, Any]:
    """What the generator was trained on: model.json's `data` over its config's `data`."""
    return {**(spec.get("config", {}).get("data") or {}), **spec.get("data", {})}


def toy_mixture(data: dict[str, Any]) -> tuple[torch.Tensor, float]:
    """The means and std of a ring or grid run's true Gaussian mixture."""
    from gankit.data import grid_means, ring_means

    name = str(data.get("name"))
    if name == "ring":
        means = ring_means(int(data.get("modes", 8)), float(data.get("radius", 1.0)))
    else:
        means = grid_means(int(data.get("size", 5)), float(data.get("spacing", 2.0)))
    return means, float(data.get("std") or TOY_STD[name])


def format_value(record: dict[str, Any]) -> str:
    """A record's value to 6 significant digits, ± its std (or s.e.) when it has one."""
    value = record.get("value")
    shown = "n/a" if value is None else f"{value:.6g}"
    details = record.get("details", {})
    spread = details.get("std", details.get("se"))
    return shown if spread is None else f"{shown} ± {spread:.2g}"


def _load_generator(run_dir: str | os.PathLike) -> Any:
    from gankit.registry import load_sampler

    return load_sampler(run_dir)  # a GAN generator or a VAE


def _sample(
    gen: Any, n: int, seed: int, rejection: bool = False, batch: int = 2000, **rejection_options
) -> torch.Tensor:
    if rejection:  # the sampler batches its own draws
        return gen.sample(n, seed=seed, rejection=True, **rejection_options).float()
    parts = [gen.sample(min(batch, n - s), seed=seed + s) for s in range(0, n, batch)]
    return torch.cat(parts).float()


def _record(
    metric: str,
    value: float | None,
    ext: Any,
    n_real: int,
    n_fake: int,
    seed: int,
    protocol: str,
    **details: Any,
) -> MetricRecord:
    return MetricRecord(
        metric=metric,
        value=value,
        extractor=ext.name,
        extractor_sha256=ext.sha256,
        n_real=n_real,
        n_fake=n_fake,
        seed=seed,
        preprocessing=ext.preprocessing,
        protocol=protocol,
        details=details,
    )


def _feature_metrics(
    real: torch.Tensor,
    fake: torch.Tensor,
    ext: Any,
    wanted: set[str],
    seed: int,
    logits: torch.Tensor | None,
    fake_features: torch.Tensor | None = None,
) -> list[MetricRecord]:
    """FD, KID, IS, P/R, D/C from one extractor's features (of `fake`, unless given)."""
    fr = ext.features(real)
    ff = ext.features(fake) if fake_features is None else fake_features
    records = _distribution_records(fr, ff, ext, wanted, seed, logits)
    return records + _manifold_records(fr, ff, ext, wanted, seed)


def _distribution_records(
    fr: torch.Tensor,
    ff: torch.Tensor,
    ext: Any,
    wanted: set[str],
    seed: int,
    logits: torch.Tensor | None,
) -> list[MetricRecord]:
    """FD and KID of the feature sets; IS of the fake logits."""
    out: list[MetricRecord] = []
    nr, nf = len(fr), len(ff)
    if "fd" in wanted:
        out.append(
            _record(
                "fd",
                frechet_distance(real=fr, fake=ff),
                ext,
                nr,
                nf,
                seed,
                "Fréchet distance of Gaussian fits, float64, eigvalsh trace sqrt",
            )
        )
    if "kid" in wanted:
        k = kernel_inception_distance(real=fr, fake=ff, seed=seed)
        out.append(
            _record(
                "kid",
                k.mean,
                ext,
                nr,
                nf,
                seed,
                f"unbiased MMD², (xᵀy/d+1)³, {k.subsets} subsets of {k.subset_size}",
                std=k.std,
                subsets=k.subsets,
                subset_size=k.subset_size,
            )
        )
    if "is" in wanted and logits is not None:
        score = inception_score(logits)
        out.append(
            _record(
                "is",
                score.mean,
                ext,
                0,
                len(logits),
                seed,
                "exp E KL(p(y|x)‖p(y)), 10 consecutive splits, std ddof=0",
                std=score.std,
                splits=score.splits,
            )
        )
    return out


def _manifold_records(
    fr: torch.Tensor, ff: torch.Tensor, ext: Any, wanted: set[str], seed: int
) -> list[MetricRecord]:
    """P/R (k = 3) and D/C (k = 5) on equal-sized real and fake feature sets."""
    out: list[MetricRecord] = []
    nr = len(fr)
    m = min(nr, len(ff))  # P/R and D/C depend on set sizes: compare equal-sized sets
    if "pr" in wanted:
        pr = precision_recall(real=fr, fake=ff[:m], k=3)
        out.append(_record("precision", pr["precision"], ext, nr, m, seed, "k-NN balls, k=3, <="))
        out.append(_record("recall", pr["recall"], ext, nr, m, seed, "k-NN balls, k=3, <="))
    if "dc" in wanted:
        dc = density_coverage(real=fr, fake=ff[:m], k=5)
        out.append(_record("density", dc["density"], ext, nr, m, seed, "real k-NN balls, k=5, <"))
        out.append(_record("coverage", dc["coverage"], ext, nr, m, seed, "real k-NN balls, k=5, <"))
    return out


def _digits(fake: torch.Tensor, wanted: set[str], seed: int) -> list[MetricRecord]:
    from gankit.data import load_digits
    from gankit.metrics.features import PixelExtractor, digits_extractor

    real, _ = load_digits("train")
    held, _ = load_digits("test")
    ext = digits_extractor()
    logits = ext.logits(fake) if "is" in wanted else None
    out = _feature_metrics(real, fake, ext, wanted, seed, logits)
    pix = PixelExtractor()
    if "parzen" in wanted:
        unit = [(t.reshape(len(t), -1).double() + 1) / 2 for t in (fake, real, held)]
        pz = parzen_window(samples=unit[0], valid=unit[1], test=unit[2])
        rec = _record(
            "parzen",
            pz.mean,
            pix,
            len(held),
            len(fake),
            seed,
            "Goodfellow et al. 2014: σ from logspace(-1,0,10) on the train split, "
            "mean ± s.e. log-likelihood (nats) of the test split",
            se=pz.se,
            sigma=pz.sigma,
            validation={f"{k:.4f}": v for k, v in pz.validation.items()},
        )
        rec.preprocessing = "pixels mapped to [0, 1], flattened (64-d)"
        out.append(rec)
    if "memorization" in wanted:
        mem = memorization(train=real, fake=fake, heldout=held)
        out.append(
            _record(
                "memorization",
                mem["copy_fraction"],
                pix,
                len(real),
                len(fake),
                seed,
                "share of fakes nearer the train split than the closest 1% of the "
                "held-out split (pixels)",
                **mem,
            )
        )
    return out


def _stacked(fake: torch.Tensor, seed: int) -> list[MetricRecord]:
    from gankit.metrics.features import digits_extractor

    ext = digits_extractor()
    labels = classify_stacked(fake, ext.model)
    r = stacked_modes(labels)
    return [
        _record(
            "stacked_modes",
            float(r["modes"]),
            ext,
            0,
            len(fake),
            seed,
            "distinct (d1,d2,d3) triples of 1,000, each channel classified",
            **r,
        ),
        _record("stacked_kl", r["kl"], ext, 0, len(fake), seed, "KL(p̂‖U_1000), nats", **r),
    ]


def _toy(
    fake: torch.Tensor, data: dict[str, Any], wanted: set[str], seed: int
) -> list[MetricRecord]:
    from gankit.data import sample_mixture
    from gankit.metrics.features import PixelExtractor

    means, std = toy_mixture(data)
    pix = PixelExtractor()
    out: list[MetricRecord] = []
    if "modes" in wanted:
        r = mixture_modes(fake, means, std)
        for key in ("modes", "hq_percent", "reverse_kl"):
            out.append(
                _record(
                    key,
                    float(r[key]),
                    pix,
                    0,
                    len(fake),
                    seed,
                    f"nearest of {len(means)} means, HQ within 3σ (σ={std})",
                    **r,
                )
            )
    real = sample_mixture(means, len(fake), std, seed=seed + 1)
    return out + _feature_metrics(real, fake, pix, wanted & {"fd", "pr", "dc"}, seed, None)


def _training_images(config: dict[str, Any]) -> torch.Tensor:
    """The run's training images, loaded as its config says (local files only)."""
    from gankit.config import from_dict
    from gankit.data.source import load_dataset

    try:
        return load_dataset(from_dict(config).data).x
    except Exception as exc:
        raise ConfigError(
            f"could not load the run's training images for Inception metrics ({exc}); "
            "pass real images to evaluate(..., real=...)"
        ) from exc


def _inception(
    fake: torch.Tensor,
    data: dict[str, Any],
    wanted: set[str],
    seed: int,
    weights: str | Path,
    real: torch.Tensor | None,
    config: dict[str, Any],
) -> list[MetricRecord]:
    from gankit.metrics.inception import InceptionExtractor

    if real is None:
        real = _training_images(config)
    ext = InceptionExtractor(weights)
    features, logits = ext.features_and_logits(fake)
    return _feature_metrics(real, fake, ext, wanted, seed, logits, features)


def evaluate(
    run_dir: str | os.PathLike,
    metrics: list[str] | None = None,
    n: int = 10000,
    seed: int = 0,
    *,
    inception_weights: str | Path | None = None,
    real: torch.Tensor | None = None,
    write: bool = True,
    rejection: bool = False,
    rejection_quantile: float = 1.0,
    min_acceptance: float = 1e-3,
    on_estimate: Any = None,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """Sample `n` images with `seed` from the run's generator and compute `metrics` (default: all
    that apply). Returns {record name: record dict}; also writes `eval.json` in the run.

    `rejection` draws the samples by discriminator rejection sampling (gankit.rejection), to
    measure what it changes; eval.json says which sampling was used. `rejection_quantile`,
    `min_acceptance`, `on_estimate` and `progress` are those of `Generator.sample`."""
    unknown = sorted(set(metrics or ()) - set(ALL_METRICS))
    if unknown:
        raise ConfigError(f"unknown metrics {unknown}; choose from {list(ALL_METRICS)}")
    if n < 10:
        raise ConfigError(f"n must be at least 10 (10 IS splits), got {n}")
    wanted = set(metrics or ALL_METRICS)
    gen = _load_generator(run_dir)
    options = {
        "rejection_quantile": rejection_quantile,
        "min_acceptance": min_acceptance,
        "on_estimate": on_estimate,
        "progress": progress,
    }
    fake = _sample(gen, n, seed, rejection, **options)
    sampling: dict[str, Any] = {"method": "direct"}
    if rejection:
        sampler = gen.rejection_sampler(rejection_quantile, min_acceptance)
        sampling = {
            "method": "discriminator rejection",
            "quantile": rejection_quantile,
            "acceptance": sampler.acceptance,
        }
    records = _records_for(run_dir, gen.spec, fake, wanted, seed, inception_weights, real)
    records += _conditional_records(gen, wanted, n, seed)
    result = {r.metric: r.to_dict() for r in records}
    if write:
        from gankit.modeldir import atomic_write_json

        atomic_write_json(
            Path(run_dir) / EVAL_FILE,
            {
                "run": str(run_dir),
                "generator_sha256": gen.spec.get("weights_sha256"),
                "step": gen.spec.get("step"),
                "n": n,
                "seed": seed,
                "sampling": sampling["method"],
                "sampling_details": sampling,
                "metrics": result,
            },
        )
    return result


def _records_for(
    run_dir: str | os.PathLike,
    spec: dict[str, Any],
    fake: torch.Tensor,
    wanted: set[str],
    seed: int,
    inception_weights: str | Path | None,
    real: torch.Tensor | None,
) -> list[MetricRecord]:
    """The metrics that fit the generator's data, as the module docstring lists them."""
    data = run_data(spec)
    shape, name = tuple(data.get("shape") or ()), data.get("name")
    if name in ("ring", "grid"):
        return _toy(fake, data, wanted, seed)
    if shape == (1, 8, 8) and name == "digits":
        return _digits(fake, wanted, seed)
    if name == "stacked-digits" and shape == (3, 8, 8):
        return _stacked(fake, seed)
    if inception_weights is not None:
        config = spec.get("config", {})
        return _inception(fake, data, wanted, seed, inception_weights, real, config)
    raise ConfigError(
        f"{run_dir}: data {name!r} with shape {list(shape)} has no offline extractor; "
        "pass inception_weights (gankit eval --inception-weights PATH)"
    )


def _conditional_records(gen: Any, wanted: set[str], n: int, seed: int) -> list[MetricRecord]:
    """Conditional accuracy and CAS (n / 10 samples per class) and intra-class FD of a
    class-conditional digits generator; nothing for other generators."""
    from gankit.metrics import conditional

    if gen.num_classes != 10 or tuple(gen.output_shape) != conditional.DIGITS_SHAPE:
        return []
    per_class = max(1, n // gen.num_classes)
    out = []
    if "conditional_accuracy" in wanted:
        out.append(conditional.conditional_accuracy(gen, per_class, seed))
    if "cas" in wanted:
        out.append(conditional.classification_accuracy_score(gen, per_class, seed))
    if "intra_fd" in wanted:
        out.append(conditional.intra_class_fd(gen, seed))
    return out


def format_records(records: dict[str, dict[str, Any]]) -> str:
    """A printable table of records: metric, value, extractor, n_real, n_fake, protocol."""
    from gankit.bench.common import format_table

    rows = []
    for name, r in records.items():
        row = [name, format_value(r), r["extractor"], r["n_real"], r["n_fake"], r["protocol"]]
        rows.append(row)
    return format_table(["metric", "value", "extractor", "n_real", "n_fake", "protocol"], rows)
