"""What every synthesizer front end shares (`TabularGAN`, `TabularVAE`): checking the table it is
given, the one-column condition, dtypes and identifier surrogates on the way out, and the
distance-to-closest-record guard and report."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.tabular.constraints import (
    FixedCombinations,
    fit_constraints,
    parse_constraints,
    to_spec,
)
from gankit.tabular.dp import DPSettings, fit_private, private_schema, range_modes
from gankit.tabular.encoders import ModeEncoder
from gankit.tabular.imputer import single_thread
from gankit.tabular.privacy import NearestRecords, distance_space
from gankit.tabular.transform import (
    ID_MIN_ROWS,
    TableSchema,
    identifier_names,
    infer_schema,
    surrogates,
)

ID_NAME = re.compile(r"(?i:^(id|uuid|key|index|serial|row)$|[_\- ](id|uuid|key)$)|[a-z](Id|ID)$")


def numeric_identifier(series: pd.Series, name: str) -> bool:
    """Whether a whole-number column is a row key: at least `ID_MIN_ROWS` values, all
    distinct, and either named like an id (`id`, `customer_id`, `customerId`) or numbering the
    rows (a run of consecutive integers)."""
    values = series.to_numpy(np.float64)
    n = len(values)
    if n < ID_MIN_ROWS or len(np.unique(values)) != n:
        return False
    consecutive = bool(values.max() - values.min() == n - 1)
    return consecutive or bool(ID_NAME.search(name.strip()))


class SyntheticTable:
    """Mixin of the synthesizers; subclasses set `schema_` and `_records` when they fit."""

    schema_: TableSchema
    _records: NearestRecords

    def _fit_table(
        self,
        data: Any,
        discrete_columns: Any,
        identifier_columns: Any,
        holdout: pd.DataFrame | None,
        resume: bool,
        min_rows: int,
    ) -> Any:
        """The fit every synthesizer shares: check the table, mode-normalise it (seeded from
        `random_state`), hand the encoded rows to the subclass's `_train(df, encoded, seed,
        resume)`, then record the training rows for the DCR guard and the privacy report."""
        self._check_params()  # type: ignore[attr-defined]
        df, schema = self._complete_table(data, discrete_columns, identifier_columns, min_rows)
        dp = self._dp_settings(resume)
        # refuses a training table that violates them (ConstraintError with the row count)
        self.constraints_ = fit_constraints(getattr(self, "constraints", None), df)
        if dp is not None:
            self._check_dp_constraints(dp)
        if dp is not None:  # ranges and categories declared or public, not learned
            df, schema, public = private_schema(df, schema, dp)
        seed = int(np.random.default_rng(self.random_state).integers(2**31))  # type: ignore[attr-defined]
        torch.manual_seed(seed)
        start = time.perf_counter()
        with single_thread():
            if dp is not None and "modes" not in dp.public:
                self.encoder_ = ModeEncoder(schema, range_modes(schema))  # no mixture fit
            else:
                self.encoder_ = ModeEncoder.fit(df, schema, seed)
            self.schema_ = schema
            encoded = self.encoder_.encode(df, np.random.default_rng(seed))
            train_start = time.perf_counter()
            self.dp_ = None
            if dp is not None:
                self.dp_ = fit_private(self, encoded, seed, dp, public)
            else:
                self._train(df, encoded, seed, resume)  # type: ignore[attr-defined]
            self.train_seconds_ = time.perf_counter() - train_start
        self.fit_seconds_ = time.perf_counter() - start
        self._records = NearestRecords(distance_space(schema, df))
        self.privacy_ = self.privacy_report(df, holdout)
        return self

    def _dp_settings(self, resume: bool) -> DPSettings | None:
        """The validated `dp` option (None: not private); DP fits are refused what would use
        the data outside DP-SGD (early stopping on fidelity, an auxiliary classifier) or
        break the accounting (resume)."""
        dp = DPSettings.parse(getattr(self, "dp", None))
        if dp is None:
            return None
        used = [
            name
            for name, on in (
                ("early_stopping", getattr(self, "early_stopping", False)),
                ("class_column", getattr(self, "class_column", None) is not None),
                ("resume", resume),
            )
            if on
        ]
        if used:
            raise ConfigError(
                f"dp: {used} would use the training data outside DP-SGD (or restart its "
                "accounting); turn them off for a private fit"
            )
        return dp

    def _check_dp_constraints(self, dp: DPSettings) -> None:
        """Fixed combinations learned from the data are data-derived sets, like categories:
        a DP fit takes them only when categories are declared public."""
        given = parse_constraints(getattr(self, "constraints", None))
        learned = [
            rule.columns
            for rule in given
            if isinstance(rule, FixedCombinations) and rule.combinations is None
        ]
        if learned and "categories" not in dp.public:
            raise ConfigError(
                f"dp: fixed_combinations of {learned} would be learned from the data; declare "
                "them ('combinations': [...]) or declare categories public"
            )

    def _constraint_params(self) -> list[dict[str, Any]] | None:
        """The `constraints` option as JSON (dicts), for model.json params."""
        rules = getattr(self, "constraints", None)
        return None if not rules else to_spec(parse_constraints(rules))

    def _load_constraints(self, spec: dict[str, Any]) -> None:
        """The fitted constraints (learned combinations included) from model.json."""
        try:
            self.constraints_ = parse_constraints(spec.get("constraints") or [])
        except ConfigError as exc:
            raise CheckpointError(f"model.json 'constraints': {exc}") from exc

    def _complete_table(
        self,
        data: Any,
        discrete_columns: Any,
        identifier_columns: Any,
        min_rows: int,
    ) -> tuple[pd.DataFrame, TableSchema]:
        """The training table (string column names, identifiers set aside) and its schema;
        a DataError for anything but a complete DataFrame of at least `min_rows` rows."""
        name = type(self).__name__
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"{name}.fit expects a pandas DataFrame, got {type(data).__name__}")
        df = data.copy()
        df.columns = [str(c) for c in df.columns]
        ids = identifier_names(df, list(identifier_columns))
        if df.drop(columns=ids).isna().any().any():
            bad = [c for c in df.columns if c not in ids and df[c].isna().any()]
            raise DataError(
                f"columns {bad} contain missing values; {name} needs a complete table "
                "(fill them first, e.g. with gankit.tabular.GANImputer)"
            )
        if len(df) < min_rows:
            raise DataError(f"{name} needs at least {min_rows} rows, got {len(df)}")
        schema = infer_schema(df, True, categorical=list(discrete_columns), identifiers=ids)
        for col in schema.columns:  # integer keys: text ones are caught by infer_schema
            if col.kind == "integer" and numeric_identifier(df[col.name], col.name):
                raise DataError(
                    f"column {col.name!r} looks like a numeric identifier (a distinct whole "
                    "number per row, named like an id or numbering the rows): a model of it "
                    "would write real ids into synthetic rows. Declare it with "
                    f"identifier_columns=[{col.name!r}] (fresh surrogates are written instead) "
                    "or drop it"
                )
        return df[schema.names], schema

    @staticmethod
    def _count(n: Any) -> int:
        """A row count: an integer >= 0 (bools and floats are refused)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ConfigError(f"n must be an integer >= 0, got {n!r}")
        return int(n)

    def _condition(self, conditions: dict[str, Any] | None) -> tuple[str, Any] | None:
        """(column, known category) of a one-column condition, validated."""
        if not conditions:
            return None
        if len(conditions) != 1:
            raise ConfigError(
                f"conditions may fix one discrete column, got {sorted(conditions)}; "
                "sample per value of the first column and filter on the others"
            )
        ((name, value),) = conditions.items()
        columns = {c.name: c for c in self.schema_.columns if c.kind == "categorical"}
        if str(name) not in columns:
            raise ConfigError(
                f"conditions: {name!r} is not a discrete column; discrete columns are "
                f"{sorted(columns)}"
            )
        col = columns[str(name)]
        matches = [c for c in col.categories if c == value or str(c) == str(value)]
        if not matches:
            raise DataError(
                f"conditions: unseen category {value!r} for column {name!r}; "
                f"known categories are {col.categories[:20]}"
            )
        return str(name), matches[0]

    def _finish(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Sampled rows as the user's table: dtypes restored, identifier columns filled with
        fresh surrogates, columns in the fitted order."""
        for col in self.schema_.columns:
            if col.kind != "categorical":
                with contextlib.suppress(TypeError, ValueError):
                    frame[col.name] = frame[col.name].astype(col.dtype)
        if self.schema_.identifiers:
            frame = frame.assign(**surrogates(self.schema_, len(frame)))[self.schema_.order]
        return frame

    # ----------------------------------------------------------------------------- privacy
    def _not_copies(self, frame: pd.DataFrame) -> np.ndarray:
        # a DP model does not filter against its training rows: that filter reads the data
        # outside DP-SGD (and a saved DP model keeps no training rows to filter against)
        if not hasattr(self, "_records") or getattr(self, "dp_", None):
            return np.ones(len(frame), dtype=bool)
        return self._records.nearest(distance_space(self.schema_, frame)) > 1e-9

    def distance_to_closest_record(self, rows: pd.DataFrame) -> np.ndarray:
        """Each row's distance to its nearest training row (numbers scaled to [0, 1] by the
        training ranges, categories one-hot, Euclidean)."""
        if not hasattr(self, "_records"):
            raise ConfigError(
                "this model keeps no training rows (a differentially private model saves "
                "none); measure distances with gankit.tabular.privacy against the table"
            )
        return self._records.nearest(distance_space(self.schema_, rows.copy()))

    def privacy_report(self, train: pd.DataFrame, holdout: pd.DataFrame | None = None) -> dict:
        """Distance to closest training record: synthetic rows vs holdout rows (or, without a
        holdout, each training row's nearest *other* training row). Ratio < 1 = closer than
        real data is: a warning sign of memorisation."""
        synth = self.sample(len(train), seed=0)  # type: ignore[attr-defined]
        return self._records.report(
            distance_space(self.schema_, synth),
            None if holdout is None else distance_space(self.schema_, holdout.copy()),
        )
