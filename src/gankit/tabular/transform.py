"""Table schema and column encoders shared by `GANImputer` and `TabularGAN`.

A `TableSchema` records what a fitted model expects (column names, kinds, dtypes, categories,
observed min/max) and is stored in `model.json`, so a saved model can validate new rows before
touching them. `MinMaxEncoder` turns a table into a float matrix in [0, 1] plus an observation
mask (numeric columns min-max scaled as in GAIN, categorical columns one-hot) and back.
Input tables are never modified: every function works on copies.

Identifier and free-text columns (a value per row: names, ids, e-mails) are not categories: a
model that one-hot encodes them learns nothing and can only replay training values. Schema
inference refuses a non-numeric column whose values are (nearly) all distinct
(`ID_MIN_ROWS`, `ID_DISTINCT_RATIO`) unless it is declared with `identifier_columns=[...]`
(left out of the model; see `split_identifiers`, `join_identifiers` and `surrogates`) or
declared categorical explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gankit.errors import CheckpointError, DataError

KINDS = ("continuous", "integer", "categorical")

# A non-numeric column is refused as an identifier when it has at least ID_MIN_ROWS observed
# values and at least ID_DISTINCT_RATIO of them are distinct. Why these numbers: a category that
# is worth modelling repeats, so its levels are a small fraction of the rows; at a ratio of 0.9
# most levels are seen once, and a one-hot model of them can only copy training values. Below
# 20 rows a genuine category (e.g. 9 colours in 10 rows) cannot be told apart from an id.
ID_MIN_ROWS = 20
ID_DISTINCT_RATIO = 0.9
SURROGATE_PREFIX = "synthetic-"


@dataclass
class ColumnInfo:
    """One column: its kind, original dtype and the range or categories seen at fit time."""

    name: str
    kind: str
    dtype: str
    min: float | None = None
    max: float | None = None
    categories: list[Any] = field(default_factory=list)

    @property
    def width(self) -> int:
        """How many encoded dimensions the column takes."""
        return len(self.categories) if self.kind == "categorical" else 1


@dataclass
class TableSchema:
    """The columns a model was fitted on and whether it was given a DataFrame or an array."""

    columns: list[ColumnInfo]
    frame: bool
    # identifier columns: (name, position among all fitted columns); left out of the model
    identifiers: list[tuple[str, int]] = field(default_factory=list)
    # prefix of the surrogate values TabularGAN writes in identifier columns; no training value
    # of those columns starts with it, so a surrogate never equals a training identifier
    surrogate_prefix: str = SURROGATE_PREFIX

    @property
    def names(self) -> list[str]:
        """The modelled columns (identifier columns excluded), in order."""
        return [c.name for c in self.columns]

    @property
    def identifier_names(self) -> list[str]:
        return [name for name, _ in self.identifiers]

    @property
    def order(self) -> list[str]:
        """Every fitted column, identifiers included, in the order of the fitted table."""
        names = self.names
        for name, pos in sorted(self.identifiers, key=lambda t: t[1]):
            names.insert(pos, name)
        return names

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frame": self.frame,
            "columns": [_jsonable(asdict(c)) for c in self.columns],
        }
        if self.identifiers:
            out["identifiers"] = [{"name": n, "position": p} for n, p in self.identifiers]
            out["surrogate_prefix"] = self.surrogate_prefix
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "model.json") -> TableSchema:
        """The schema `to_dict` wrote; anything else raises `CheckpointError` saying what."""
        where = f"{where} 'schema'"
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise CheckpointError(f"{where}: expected {{'frame': bool, 'columns': [...]}}")
        unknown = sorted(set(data) - {"frame", "columns", "identifiers", "surrogate_prefix"})
        if unknown or not isinstance(data.get("frame"), bool) or not data["columns"]:
            raise CheckpointError(
                f"{where}: expected keys frame (bool), columns (non-empty list), optional "
                f"identifiers and surrogate_prefix; unknown keys {unknown}"
            )
        cols = [_column_from_dict(c, f"{where} column {i}") for i, c in enumerate(data["columns"])]
        ids = []
        for item in data.get("identifiers", []):
            if (
                not isinstance(item, dict)
                or set(item) != {"name", "position"}
                or not isinstance(item["name"], str)
                or not isinstance(item["position"], int)
            ):
                raise CheckpointError(f"{where}: identifier {item!r} is not {{name, position}}")
            ids.append((item["name"], item["position"]))
        prefix = data.get("surrogate_prefix", SURROGATE_PREFIX)
        if not isinstance(prefix, str):
            raise CheckpointError(f"{where}: surrogate_prefix must be a string")
        names = [c.name for c in cols] + [n for n, _ in ids]
        if len(set(names)) != len(names):
            raise CheckpointError(f"{where}: duplicate column names in {names}")
        return cls(columns=cols, frame=data["frame"], identifiers=ids, surrogate_prefix=prefix)


def _column_from_dict(item: Any, where: str) -> ColumnInfo:
    fields = {"name", "kind", "dtype", "min", "max", "categories"}
    if not isinstance(item, dict) or set(item) != fields:
        got = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise CheckpointError(f"{where}: expected the keys {sorted(fields)}, got {got}")
    if not isinstance(item["name"], str) or item["kind"] not in KINDS:
        raise CheckpointError(
            f"{where}: name must be a string and kind one of {list(KINDS)}, got "
            f"{item['name']!r} / {item['kind']!r}"
        )
    if item["kind"] == "categorical":
        if not isinstance(item["categories"], list) or not item["categories"]:
            raise CheckpointError(f"{where} ({item['name']!r}): categories must be a list")
    else:
        bounds = (item["min"], item["max"])
        if (
            not all(
                isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b)
                for b in bounds
            )
            or bounds[0] > bounds[1]
        ):
            raise CheckpointError(
                f"{where} ({item['name']!r}): min and max must be finite numbers, min <= max"
            )
    return ColumnInfo(**item)


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars inside dicts/lists to plain Python for JSON."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def as_frame(X: Any) -> tuple[pd.DataFrame, bool]:
    """A DataFrame view-copy of `X` (DataFrame, 2-D array or nested list) and whether it was one."""
    if isinstance(X, pd.DataFrame):
        return X.copy(), True
    if isinstance(X, pd.Series):
        return X.to_frame().T.reset_index(drop=True), True
    if hasattr(X, "tocsr") or hasattr(X, "todense"):
        raise DataError("sparse input is not supported; pass a dense array (X.toarray())")
    try:
        arr = np.array(X, copy=True)
    except (TypeError, ValueError) as exc:
        raise DataError(f"input is not a table: {exc}") from exc
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    if arr.ndim == 1:
        raise DataError(
            f"expected a 2-D table, got a 1-D array of length {arr.shape[0]}. Reshape your "
            "data: X.reshape(1, -1) for a single row or X.reshape(-1, 1) for a single column"
        )
    if arr.ndim != 2:
        raise DataError(f"expected a 2-D table, got an array with shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise DataError("Complex data not supported; expected real numbers")
    return pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])]), False


def _numeric_column(series: pd.Series, name: str) -> np.ndarray:
    """Float values of a numeric column; text or inf raises `DataError` naming the column."""
    if series.dtype.kind in "biuf":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        present = series.notna().to_numpy()
        coerced = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        bad = present & np.isnan(coerced)
        if bad.any():
            example = series[bad].iloc[0]
            raise DataError(
                f"column {name!r}: found non-numeric value {example!r} in a numeric column "
                f"({int(bad.sum())} such value(s)); expected numbers or NaN for missing"
            )
        values = coerced
    if np.isinf(values).any():
        raise DataError(f"column {name!r}: found inf; expected finite numbers or NaN for missing")
    return values


def _is_categorical_dtype(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype.kind == "b":
        return True
    if series.dtype.kind in "OUS" or pd.api.types.is_string_dtype(series.dtype):
        values = series.dropna()
        numeric = pd.to_numeric(values, errors="coerce").notna().mean() if len(values) else 0.0
        return numeric < 0.9  # mostly text: categorical; mostly numbers: numeric with typos
    return False


def _select(names: list[str], wanted: Sequence[Any] | None, what: str) -> set[str]:
    if wanted is None:
        return set()
    out = set()
    for w in wanted:
        if isinstance(w, int | np.integer) and not isinstance(w, bool) and str(w) not in names:
            if not 0 <= int(w) < len(names):
                raise DataError(f"{what}: column index {w} out of range 0..{len(names) - 1}")
            out.add(names[int(w)])
        elif str(w) in names:
            out.add(str(w))
        else:
            raise DataError(f"{what}: no column named {w!r}; columns are {names}")
    return out


def identifier_names(df: pd.DataFrame, identifiers: Sequence[Any] | None) -> list[str]:
    """The declared identifier columns of `df` as names (indices allowed), in table order."""
    names = [str(c) for c in df.columns]
    chosen = _select(names, identifiers, "identifier_columns")
    return [n for n in names if n in chosen]


def _identifier_problem(series: pd.Series, name: str) -> str | None:
    """A message when a non-numeric column looks like an identifier or free text, else None."""
    values = series.dropna()
    n = len(values)
    if n < ID_MIN_ROWS:
        return None
    distinct = values.astype(str).nunique()
    if distinct < ID_DISTINCT_RATIO * n:
        return None
    examples = ", ".join(repr(str(v)) for v in values.iloc[:3])
    return (
        f"column {name!r} looks like an identifier or free text: {distinct} distinct values in "
        f"{n} rows (e.g. {examples}), so it cannot be modelled as a category (each value is "
        f"seen about once; a model could only copy them). Drop the column, or declare it with "
        f"identifier_columns=[{name!r}] (CLI: --id-columns {name}) to leave it out of the model"
    )


def infer_schema(
    df: pd.DataFrame,
    frame: bool,
    categorical: Sequence[Any] | None = None,
    integer: Sequence[Any] | str | None = "auto",
    identifiers: Sequence[Any] | None = None,
) -> TableSchema:
    """Decide each column's kind and record its range or categories (observed values only).

    `identifiers` (names or indices) are left out of the model; an undeclared non-numeric
    column that looks like one (see `ID_DISTINCT_RATIO`) raises `DataError` naming it."""
    df.columns = [str(c) for c in df.columns]
    names = list(df.columns)
    if len(set(names)) != len(names):
        raise DataError(f"duplicate column names in {names}")
    if df.shape[1] == 0:
        raise DataError(
            f"0 feature(s) (shape={df.shape}) while a minimum of 1 is required: "
            "the table has no columns"
        )
    ids = identifier_names(df, identifiers)
    cats = _select(names, categorical, "categorical_columns")
    ints = set() if integer in (None, "auto") else _select(names, integer, "integer_columns")  # type: ignore[arg-type]
    both = sorted(cats & set(ids))
    if both:
        raise DataError(f"columns {both} are declared both categorical and identifier")
    if len(ids) == len(names):
        raise DataError(f"every column is an identifier ({ids}); nothing is left to model")
    columns = []
    for name in names:
        if name in ids:
            continue
        series = df[name]
        if series.isna().all():
            raise DataError(
                f"column {name!r} has no observed value; every column needs at least one"
            )
        if name in cats or _is_categorical_dtype(series):
            if name not in cats and series.dtype.kind != "b":
                problem = _identifier_problem(series, name)
                if problem:
                    raise DataError(problem)
            levels = sorted(pd.unique(series.dropna()), key=lambda v: (str(type(v)), v))
            columns.append(ColumnInfo(name, "categorical", str(series.dtype), categories=levels))
            continue
        values = _numeric_column(series, name)
        observed = values[~np.isnan(values)]
        whole = bool(np.all(observed == np.round(observed)))
        is_int = name in ints or (integer == "auto" and (series.dtype.kind in "iu" or whole))
        kind = "integer" if is_int else "continuous"
        columns.append(
            ColumnInfo(name, kind, str(series.dtype), float(observed.min()), float(observed.max()))
        )
    return TableSchema(
        columns=columns,
        frame=frame,
        identifiers=[(n, names.index(n)) for n in ids],
        surrogate_prefix=_surrogate_prefix(df[ids]) if ids else SURROGATE_PREFIX,
    )


def _surrogate_prefix(ids: pd.DataFrame) -> str:
    """`SURROGATE_PREFIX`, numbered if needed, such that no training identifier starts with it."""
    seen = {str(v) for col in ids.columns for v in ids[col].dropna()}
    prefix, k = SURROGATE_PREFIX, 1
    while any(v.startswith(prefix) for v in seen):
        k += 1
        prefix = f"synthetic{k}-"
    return prefix


def surrogates(schema: TableSchema, n: int) -> dict[str, list[str]]:
    """Fresh values for each identifier column of `n` synthetic rows: prefix + row number.

    No training identifier starts with the prefix, so none is ever reproduced."""
    values = [f"{schema.surrogate_prefix}{i:06d}" for i in range(1, n + 1)]
    return {name: list(values) for name in schema.identifier_names}


def split_identifiers(
    df: pd.DataFrame, schema: TableSchema
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the table without its identifier columns, those columns or None) before `conform`.

    A DataFrame fitted as one may omit identifier columns; a positional table (array) either
    has every fitted column or only the modelled ones."""
    if not schema.identifiers:
        return df, None
    ids = schema.identifier_names
    positional = not schema.frame or all(isinstance(c, int | np.integer) for c in df.columns)
    if positional:
        if df.shape[1] != len(schema.order):
            return df, None  # only the modelled columns (or a wrong count: conform says so)
        df = df.copy()
        df.columns = schema.order
    else:
        df.columns = [str(c) for c in df.columns]
    present = [n for n in ids if n in df.columns]
    if not present:
        return df, None
    return df.drop(columns=present), df[present]


def join_identifiers(out: Any, ids: pd.DataFrame | None, schema: TableSchema) -> Any:
    """Put the identifier columns taken by `split_identifiers` back, untouched, in place."""
    if ids is None:
        return out
    if isinstance(out, pd.DataFrame):
        full = pd.concat([out, ids], axis=1)
        return full[[c for c in schema.order if c in full.columns]]
    frame = pd.DataFrame(out, columns=schema.names, index=ids.index)
    full = pd.concat([frame, ids], axis=1)
    return full[[c for c in schema.order if c in full.columns]].to_numpy(dtype=object)


def conform(df: pd.DataFrame, schema: TableSchema, owner: str = "the model") -> pd.DataFrame:
    """Check that `df` has the fitted columns (reordering a DataFrame's columns if needed)."""
    names = schema.names
    if not schema.frame or all(isinstance(c, int | np.integer) for c in df.columns):
        if df.shape[1] != len(names):
            raise DataError(
                f"X has {df.shape[1]} features, but {owner} is expecting {len(names)} "
                "features as input (the column count seen at fit time)"
            )
        df.columns = names
        return df
    df.columns = [str(c) for c in df.columns]
    missing = [n for n in names if n not in df.columns]
    extra = [c for c in df.columns if c not in names]
    if missing or extra:
        raise DataError(
            f"columns differ from those seen at fit time: missing {missing}, unexpected {extra}"
        )
    return df[names]


class MinMaxEncoder:
    """Table <-> float matrix in [0, 1] with an observation mask (1 = observed)."""

    def __init__(self, schema: TableSchema) -> None:
        self.schema = schema
        self.slices: list[slice] = []
        start = 0
        for col in schema.columns:
            self.slices.append(slice(start, start + col.width))
            start += col.width

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Scaled values (0 where missing) and the mask; raises `DataError` naming the row and
        column of bad values (`validate_rows`)."""
        raise_row_errors(validate_rows(df, self.schema))
        n = len(df)
        values = np.zeros((n, self.schema.width))
        mask = np.zeros((n, self.schema.width))
        for col, sl in zip(self.schema.columns, self.slices, strict=True):
            series = df[col.name]
            if col.kind == "categorical":
                self._encode_categorical(series, col, values[:, sl], mask[:, sl])
                continue
            raw = _numeric_column(series, col.name)
            seen = ~np.isnan(raw)
            span = (col.max - col.min) or 1.0  # type: ignore[operator]
            values[seen, sl.start] = (raw[seen] - col.min) / span
            mask[seen, sl.start] = 1.0
        return values, mask

    @staticmethod
    def _encode_categorical(
        series: pd.Series, col: ColumnInfo, values: np.ndarray, mask: np.ndarray
    ) -> None:
        for row, v in enumerate(series.to_numpy(dtype=object)):
            if _is_missing(v):
                continue
            idx = category_index(col, v)
            if idx is None:
                raise DataError(
                    f"column {col.name!r}: unseen category {v!r}; "
                    f"known categories are {col.categories[:20]}"
                )
            values[row, idx] = 1.0
            mask[row, :] = 1.0

    def decode(self, values: np.ndarray, clip: bool = True) -> pd.DataFrame:
        """Scaled matrix -> table: argmax category, rescaled and rounded numbers."""
        out: dict[str, Any] = {}
        for col, sl in zip(self.schema.columns, self.slices, strict=True):
            block = values[:, sl]
            if col.kind == "categorical":
                cats = np.array(col.categories, dtype=object)
                out[col.name] = cats[np.argmax(block, axis=1)]
                continue
            z = np.clip(block[:, 0], 0.0, 1.0) if clip else block[:, 0]
            x = z * ((col.max - col.min) or 1.0) + col.min  # type: ignore[operator]
            if col.kind == "integer":
                x = np.round(x)
            out[col.name] = x
        return pd.DataFrame(out)


# ------------------------------------------------------------------------- row validation
@dataclass(frozen=True)
class RowError:
    """One problem in the input: the row (position from 0), the column (None: the row) and why."""

    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.message}"


def category_index(column: ColumnInfo, value: Any) -> int | None:
    """Position of `value` among the column's categories, else None: equal values (a boolean
    only equals a boolean: True is not the category 1), or equal text when either is text
    (the category 1 read back from CSV as "1")."""
    is_bool = isinstance(value, bool | np.bool_)
    for i, c in enumerate(column.categories):
        if isinstance(c, bool | np.bool_) == is_bool and c == value:
            return i
    text = str(value)
    for i, c in enumerate(column.categories):
        if (isinstance(c, str) or isinstance(value, str)) and str(c) == text:
            return i
    return None


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _cell_problem(column: ColumnInfo, value: Any) -> str | None:
    """Why `value` cannot go in `column` (None when it can, or when it is missing)."""
    if _is_missing(value) or (isinstance(value, np.floating) and np.isnan(value)):
        return None
    if column.kind == "categorical":
        if isinstance(value, list | dict | tuple):
            return f"expected a category, got {type(value).__name__}"
        if category_index(column, value) is None:
            return f"unseen category {value!r}; known categories are {column.categories[:20]}"
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        return f"non-numeric value {shown}; expected a number, or null/NaN for missing"
    try:
        number = float(value)
    except OverflowError:
        return "number too large; expected a finite number"
    if not math.isfinite(number):
        return f"found {number}; expected a finite number, or null/NaN for missing"
    return None


def validate_rows(rows: Any, schema: TableSchema, max_errors: int = 20) -> list[RowError]:
    """Every problem of `rows` against `schema`, located by row and column (at most
    `max_errors`): unknown or (for records) non-object rows, text in number columns, inf,
    unseen categories. Identifier columns take any value; missing cells are not errors.

    `rows` is a DataFrame whose columns follow the schema (the estimators' input check, where
    number columns may hold numeric text, as read from CSV) or a sequence of records
    column -> value (the service's request check, where numbers must be numbers and NaN or
    inf is an error: JSON has null for missing)."""
    errors: list[RowError] = []
    if isinstance(rows, pd.DataFrame):
        for col in schema.columns:
            if col.name in rows.columns:
                errors += _frame_column_errors(rows[col.name], col, max_errors - len(errors))
            if len(errors) >= max_errors:
                break
        return sorted(errors, key=lambda e: e.row)
    known = {c.name for c in schema.columns} | set(schema.identifier_names)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            errors.append(RowError(i, None, "a row must be an object column -> value"))
        else:
            for key in row:
                if key not in known:
                    errors.append(RowError(i, str(key), f"unknown column; expected {schema.order}"))
            for col in schema.columns:
                value = row.get(col.name)
                if isinstance(value, float) and not math.isfinite(value):
                    problem = f"found {value}; expected a finite number, or null for missing"
                else:
                    problem = _cell_problem(col, value)
                if problem:
                    errors.append(RowError(i, col.name, problem))
            for name in schema.identifier_names:
                value = row.get(name)
                if isinstance(value, list | dict) or (
                    isinstance(value, float) and not math.isfinite(value)
                ):
                    errors.append(RowError(i, name, "an identifier must be a text or a number"))
        if len(errors) >= max_errors:
            break
    return errors[:max_errors]


def _frame_column_errors(series: pd.Series, col: ColumnInfo, limit: int) -> list[RowError]:
    """Vectorised per column: numbers may be numeric text (CSV), as `_numeric_column` allows."""
    if limit <= 0:
        return []
    if col.kind == "categorical":
        values = series.to_numpy(dtype=object)
        out = []
        for row, v in enumerate(values):
            problem = _cell_problem(col, v)
            if problem:
                out.append(RowError(row, col.name, problem))
                if len(out) >= limit:
                    break
        return out
    if series.dtype.kind in "biuf":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.zeros(len(values), dtype=bool)
    else:
        present = series.notna().to_numpy()
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        bad = present & np.isnan(values)
    rows = np.flatnonzero(bad | np.isinf(values))[:limit]
    raw = series.to_numpy(dtype=object)
    return [
        RowError(
            int(r),
            col.name,
            f"non-numeric value {raw[r]!r}; expected a number, or NaN for missing"
            if bad[r]
            else f"found {values[r]}; expected a finite number, or NaN for missing",
        )
        for r in rows
    ]


def raise_row_errors(errors: list[RowError], shown: int = 5) -> None:
    """`DataError` listing the first `shown` problems (and how many more), if any."""
    if not errors:
        return
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    raise DataError("; ".join(str(e) for e in errors[:shown]) + more)
