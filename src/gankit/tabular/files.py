"""CSV-in, CSV-out entry points behind `gankit impute` and `gankit synth` (one call each)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gankit.errors import ConfigError, DataError


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV table or raise `DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV table ({exc})") from exc


def impute_file(
    inp: str | Path,
    out: str | Path,
    fit: str | Path | None = None,
    model: str | Path | None = None,
    save: str | Path | None = None,
    sample_posterior: bool = False,
    seed: int | None = 0,
    **params: Any,
) -> dict[str, Any]:
    """Fill the NaNs of `inp` and write `out`: with a saved imputer (`model`) or one fitted on
    `fit` (default: on `inp` itself); `save` writes the fitted imputer as a model directory.
    Training `params` (e.g. `n_steps`) are ignored when a saved `model` is used."""
    from gankit.tabular.imputer import GANImputer

    if model is not None and fit is not None:
        raise ConfigError("give either --model DIR or --fit CSV, not both")
    rows = read_csv(inp)
    if model is not None:
        imputer = GANImputer.load(model)
        imputer.set_params(sample_posterior=sample_posterior, random_state=seed)
    else:
        imputer = GANImputer(sample_posterior=sample_posterior, random_state=seed, **params)
        imputer.fit(read_csv(fit) if fit is not None else rows)
    filled = imputer.transform(rows)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    filled.to_csv(out, index=False)
    if save is not None:
        imputer.save(save)
    return {"rows": len(filled), "missing_filled": int(rows.isna().sum().sum()), "out": str(out)}


def synth_fit_file(
    data: str | Path,
    out: str | Path,
    discrete: Sequence[str] = (),
    steps: int = 1000,
    seed: int | None = 0,
    **params: Any,
) -> dict[str, Any]:
    """Fit a `TabularGAN` on a CSV and save it as a model directory; returns the privacy report."""
    from gankit.tabular.synthesizer import TabularGAN

    model = TabularGAN(n_steps=steps, random_state=seed, **params)
    model.fit(read_csv(data), discrete_columns=list(discrete))
    model.save(out)
    return {"out": str(out), "privacy": model.privacy_, "fit_seconds": model.fit_seconds_}


def synth_sample_file(
    model: str | Path,
    out: str | Path,
    n: int = 1000,
    seed: int | None = 0,
    conditions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load a saved `TabularGAN`, draw `n` rows and write them as CSV."""
    from gankit.tabular.synthesizer import TabularGAN

    frame = TabularGAN.load(model).sample(n, conditions=conditions, seed=seed)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return {"rows": len(frame), "out": str(out)}
