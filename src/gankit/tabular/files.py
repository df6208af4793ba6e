"""CSV-in, CSV-out entry points behind `gankit impute` and `gankit synth` (one call each).

The delimiter of a CSV is detected (`csv.Sniffer` over `DELIMITERS`) unless given; a file
whose delimiter cannot be told is refused with a message naming the candidates, never read as
one text column. Output CSVs use the input's delimiter.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gankit.errors import CheckpointError, ConfigError, DataError

DELIMITERS = ",;\t|"
_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_OPTION = {",": ",", ";": "';'", "\t": "tab", "|": "'|'"}


def detect_delimiter(path: Path, sample_bytes: int = 65536) -> str:
    """The delimiter of a CSV file among `DELIMITERS`; `DataError` when it cannot be told."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        sample = fh.read(sample_bytes)
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    in_header = [d for d in DELIMITERS if d in lines[0]]
    if not in_header:
        return ","  # one column: nothing to split
    if len(in_header) == 1 and all(line.count(in_header[0]) for line in lines[:50]):
        return in_header[0]
    found = " and ".join(_NAMES[d] for d in in_header)
    raise DataError(
        f"{path}: cannot tell the column delimiter (the header contains {found}, and the rows "
        "do not settle it); give it with --delimiter, e.g. --delimiter ';' "
        "(one of ',', ';', tab, '|')"
    )


def read_csv(path: str | Path, delimiter: str | None = None) -> pd.DataFrame:
    """Read a CSV table (delimiter detected unless given) or raise `DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if delimiter is not None and delimiter not in DELIMITERS:
        raise DataError(f"delimiter {delimiter!r} is not one of ',', ';', tab, '|'")
    sep = delimiter or detect_delimiter(path)
    try:
        frame = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV table ({exc})") from exc
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        other = [d for d in DELIMITERS if d != sep and d in header]
        if other:
            raise DataError(
                f"{path}: read as a single column named {header!r} with delimiter "
                f"{_NAMES[sep]}, but the header contains {_NAMES[other[0]]}; give the "
                f"delimiter with --delimiter {_OPTION[other[0]]}"
            )
    frame.attrs["delimiter"] = sep
    return frame


def write_csv(frame: pd.DataFrame, out: str | Path, delimiter: str = ",") -> None:
    """Write `frame` as CSV (creating the parent directory)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False, sep=delimiter)


def impute_file(
    inp: str | Path,
    out: str | Path,
    fit: str | Path | None = None,
    model: str | Path | None = None,
    save: str | Path | None = None,
    sample_posterior: bool = False,
    seed: int | None = 0,
    id_columns: Sequence[str] = (),
    delimiter: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Fill the NaNs of `inp` and write `out`: with a saved imputer (`model`) or one fitted on
    `fit` (default: on `inp` itself); `save` writes the fitted imputer as a model directory.
    `id_columns` are passed through untouched (not modelled). Training `params` (e.g.
    `n_steps`) and `id_columns` are ignored when a saved `model` is used (it knows its own)."""
    from gankit.tabular.imputer import GANImputer

    if model is not None and fit is not None:
        raise ConfigError("give either --model DIR or --fit CSV, not both")
    rows = read_csv(inp, delimiter)
    if model is not None:
        imputer = GANImputer.load(model)
        imputer.set_params(sample_posterior=sample_posterior, random_state=seed)
    else:
        imputer = GANImputer(
            sample_posterior=sample_posterior,
            random_state=seed,
            identifier_columns=list(id_columns) or None,
            **params,
        )
        imputer.fit(read_csv(fit, delimiter) if fit is not None else rows)
    filled = imputer.transform(rows)
    write_csv(filled, out, rows.attrs["delimiter"])
    if save is not None:
        imputer.save(save)
    filled_cells = int(rows.isna().sum().sum() - pd.DataFrame(filled).isna().sum().sum())
    return {"rows": len(filled), "missing_filled": filled_cells, "out": str(out)}


def synth_fit_file(
    data: str | Path,
    out: str | Path,
    discrete: Sequence[str] = (),
    steps: int = 1000,
    seed: int | None = 0,
    id_columns: Sequence[str] = (),
    delimiter: str | None = None,
    model: str = "gan",
    **params: Any,
) -> dict[str, Any]:
    """Fit a `TabularGAN` (`model="gan"`) or a `TabularVAE` (`"vae"`) on a CSV and save it as a
    model directory; returns the privacy report. `id_columns` are not modelled: sampled rows
    get fresh surrogate values in them."""
    from gankit.tabular.synthesizer import TabularGAN
    from gankit.tabular.tvae import TabularVAE

    estimators = {"gan": TabularGAN, "vae": TabularVAE}
    if model not in estimators:
        raise ConfigError(f"model = {model!r} is not allowed; choose one of {list(estimators)}")
    model = estimators[model](n_steps=steps, random_state=seed, **params)
    model.fit(
        read_csv(data, delimiter),
        discrete_columns=list(discrete),
        identifier_columns=list(id_columns),
    )
    model.save(out)
    return {"out": str(out), "privacy": model.privacy_, "fit_seconds": model.fit_seconds_}


def synth_sample_file(
    model: str | Path,
    out: str | Path,
    n: int = 1000,
    seed: int | None = 0,
    conditions: dict[str, Any] | None = None,
    delimiter: str = ",",
) -> dict[str, Any]:
    """Load a saved `TabularGAN` or `TabularVAE`, draw `n` rows and write them as CSV."""
    from gankit.modeldir import verify_model_dir
    from gankit.registry import kind

    entry = kind(verify_model_dir(model).get("kind"), model)
    if "synthesis" not in entry.tags:
        raise CheckpointError(f"{model}: a {entry.name!r} model is not a table synthesizer")
    frame = entry.load(model).sample(n, conditions=conditions, seed=seed)
    write_csv(frame, out, delimiter)
    return {"rows": len(frame), "out": str(out)}
