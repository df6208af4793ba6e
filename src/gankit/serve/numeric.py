"""The pandas-free /v1/impute path of numeric imputers (issue 15: one-row requests in real time).

For an imputer whose columns are all numbers (no categorical, no identifier columns) a request's
rows go straight from JSON objects to one float array (NaN = missing), through
`GANImputer.transform_numeric`, and back to JSON objects; no DataFrame is built. The check is as
strict as `validate_rows` (unknown columns, text or booleans in number columns, NaN / Infinity,
numbers beyond float range): the fast loop accepts only plain finite numbers and nulls in known
columns, and anything else is handed to `TabularModel.check_rows`, so every 422 carries the
same messages as before.

The input-quality metrics and the drift window are updated once per model call (a micro-batch
of requests, `batching.py`) from the joined array, not once per request.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError

from gankit.serve.drift import DriftMonitor
from gankit.serve.metrics import ServeMetrics
from gankit.serve.models import TabularModel

FLOAT_MAX = sys.float_info.max


def serves(model: Any) -> bool:
    """Whether `model` is a tabular model with a numeric fast path (GANImputer.transform_numeric,
    numbers only, no identifier columns)."""
    return (
        isinstance(model, TabularModel)
        and hasattr(model.obj, "transform_numeric")
        and all(c.kind != "categorical" for c in model.schema.columns)
        and not model.schema.identifiers
    )


def fills_rows_independently(imputer: Any) -> bool:
    """Whether the imputer fills each row the same whatever rows share its call: the mixture's
    conditional mean alone. The generator's noise, posterior draws and the self-masking
    (MNAR) importance samples are drawn per call in row order, so with those a row's value
    depends on its position; such requests are filled one call each."""
    return (
        not getattr(imputer, "sample_posterior", False)
        and getattr(imputer, "best_step_", 1) == 0
        and getattr(imputer, "mechanism_", None) is None
    )


class NumericImputer:
    """Check, fill and answer rows of one numeric imputer; `run` is its micro-batch function."""

    def __init__(
        self, model: TabularModel, metrics: ServeMetrics, monitor: DriftMonitor | None = None
    ):
        self.model, self.metrics = model, metrics
        self.monitor = monitor if monitor is not None and monitor.columns else None
        self.names = list(model.column_names)
        self.known = frozenset(self.names)
        self.integer = [
            c.kind == "integer" and c.dtype.lower().startswith(("int", "uint"))
            for c in model.schema.columns
        ]
        # out of range: outside the training [min, max] of columns that have both
        self.bounded = np.array([c.low is not None and c.high is not None for c in model.columns])
        self.low = np.array([c.low if c.low is not None else 0.0 for c in model.columns], float)
        self.high = np.array([c.high if c.high is not None else 0.0 for c in model.columns], float)

    # ------------------------------------------------------------------ request -> array

    def check(self, rows: Sequence[Any], loc: tuple = ("body", "rows")) -> np.ndarray:
        """The rows as an (n, width) float array (NaN = missing); 422 naming the row and column
        of every problem, exactly as `TabularModel.check_rows`."""
        x = self._fast(rows)
        if x is not None:
            return x
        check = self.model.check_rows(rows, loc)
        if check.errors:
            raise RequestValidationError(check.errors)
        return check.frame[self.names].to_numpy(np.float64)

    def _fast(self, rows: Sequence[Any]) -> np.ndarray | None:
        """The array when every cell is null or a plain finite number in a known column; None
        sends the request through the full check."""
        values: list[float] = []
        nan = math.nan
        for row in rows:
            if not isinstance(row, dict) or not self.known.issuperset(row):
                return None
            for name in self.names:
                v = row.get(name)
                if v is None:
                    values.append(nan)
                elif type(v) is float:
                    if v - v != 0.0:  # NaN or ±inf
                        return None
                    values.append(v)
                elif type(v) is int and -FLOAT_MAX <= v <= FLOAT_MAX:
                    values.append(v)
                else:  # bool, text, lists, huge integers: the full check names the problem
                    return None
        return np.array(values, dtype=np.float64).reshape(len(rows), len(self.names))

    # ------------------------------------------------------------------ model call

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Fill the rows of waiting requests: observe them (metrics, drift window), then one
        `transform_numeric` call for all when the imputer fills rows independently, else one
        per request. Runs in a worker thread."""
        joined = np.concatenate(inputs) if len(inputs) > 1 else inputs[0]
        self.observe(joined)
        if len(inputs) == 1 or not fills_rows_independently(self.model.obj):
            return [self.fill(x) for x in inputs]
        filled = self.fill(joined)
        out, start = [], 0
        for x in inputs:
            out.append(filled[start : start + len(x)])
            start += len(x)
        return out

    def fill(self, x: np.ndarray) -> np.ndarray:
        """`transform_numeric` under the model's lock."""
        with self.model._lock:
            return self.model.obj.transform_numeric(x)

    def observe(self, x: np.ndarray) -> None:
        """Input-quality counters and the drift window, for a block of request rows."""
        nan = np.isnan(x)
        missing = nan.sum(0)
        with np.errstate(invalid="ignore"):
            outside = ((x < self.low) | (x > self.high)) & self.bounded & ~nan
        self.metrics.observe_inputs(
            self.model.name, self.names, missing.tolist(), outside.sum(0).tolist(), len(x)
        )
        if self.monitor is not None:
            self.monitor.observe({n: x[:, j] for j, n in enumerate(self.names)}, self.metrics)

    # ------------------------------------------------------------------ array -> response

    def rows_out(self, x: np.ndarray) -> list[dict[str, Any]]:
        """JSON-ready rows: integer columns as integers, non-finite values as null."""
        out = []
        for values in x.tolist():
            row: dict[str, Any] = {}
            for name, integer, v in zip(self.names, self.integer, values, strict=True):
                if v - v != 0.0:
                    row[name] = None
                else:
                    row[name] = int(v) if integer else v
            out.append(row)
        return out
