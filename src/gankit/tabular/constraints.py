"""Declarative constraints on synthetic rows: what every sampled row must satisfy.

A constraint is a small dict (or one of the dataclasses below):

* `{"type": "range", "column": "age", "low": 0, "high": 120}` — low <= x <= high (either bound
  may be left out); fixed by clipping.
* `{"type": "positive", "column": "amount"}` — x >= 0 (`"strict": True`: x > 0); fixed by
  clipping at 0 (strict: by rejection).
* `{"type": "inequality", "low": "start", "high": "end"}` — start <= end (`"strict": True`:
  <); by rejection.
* `{"type": "integer", "column": "children"}` — whole numbers; fixed by rounding.
* `{"type": "rounding", "column": "price", "digits": 2}` — at most `digits` decimals; fixed by
  rounding.
* `{"type": "fixed_combinations", "columns": ["city", "country"]}` — only the combinations of
  these columns' values that the training table holds (or the declared `"combinations"`); by
  rejection.

`check(frame, constraints)` is the boolean mask of rows that satisfy all of them; `enforce`
applies the fixes; `constrained` wraps a synthesizer's `sample` so that it returns only rows
that satisfy every constraint (fixing what can be fixed, rejecting the rest, and recording
the acceptance rate in `constraint_acceptance_`). A training table that violates a constraint
is refused at fit (`ConstraintError`, with the number of offending rows).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gankit.errors import ConfigError, ConstraintError, DataError

__all__ = [
    "Constraint",
    "FixedCombinations",
    "Inequality",
    "Integer",
    "Positive",
    "Range",
    "Rounding",
    "check",
    "constrained",
    "enforce",
    "fit_constraints",
    "parse_constraints",
]

MAX_ROUNDS = 50
MIN_ACCEPTANCE = 1e-3


class Constraint:
    """One rule: `satisfied(frame)` (a boolean mask), `fix(frame)` (a copy with what can be
    fixed fixed), `columns` (the columns it reads) and `to_dict()` (its declarative form)."""

    type: str = ""

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def satisfied(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def fix(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    def learn(self, frame: pd.DataFrame) -> Constraint:
        """The constraint with what it takes from the training table (default: itself)."""
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}  # type: ignore[call-overload]


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)


@dataclass(frozen=True)
class Range(Constraint):
    """low <= column <= high (a bound of None is open)."""

    column: str
    low: float | None = None
    high: float | None = None
    type = "range"

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def satisfied(self, frame: pd.DataFrame) -> np.ndarray:
        x = _numbers(frame, self.column)
        ok = ~np.isnan(x)
        if self.low is not None:
            ok &= x >= self.low
        if self.high is not None:
            ok &= x <= self.high
        return ok

    def fix(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame[self.column] = frame[self.column].clip(self.low, self.high)
        return frame


@dataclass(frozen=True)
class Positive(Constraint):
    """column >= 0 (strict: > 0)."""

    column: str
    strict: bool = False
    type = "positive"

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def satisfied(self, frame: pd.DataFrame) -> np.ndarray:
        x = _numbers(frame, self.column)
        return x > 0 if self.strict else x >= 0

    def fix(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.strict:  # strict positivity has no clipping target: rejection decides
            frame[self.column] = frame[self.column].clip(lower=0)
        return frame


@dataclass(frozen=True)
class Inequality(Constraint):
    """column `low` <= column `high` (strict: <)."""

    low: str
    high: str
    strict: bool = False
    type = "inequality"

    @property
    def columns(self) -> list[str]:
        return [self.low, self.high]

    def satisfied(self, frame: pd.DataFrame) -> np.ndarray:
        a, b = _numbers(frame, self.low), _numbers(frame, self.high)
        return a < b if self.strict else a <= b


@dataclass(frozen=True)
class Integer(Constraint):
    """Whole numbers."""

    column: str
    type = "integer"

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def satisfied(self, frame: pd.DataFrame) -> np.ndarray:
        x = _numbers(frame, self.column)
        return np.isfinite(x) & (x == np.round(x))

    def fix(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame[self.column] = np.round(_numbers(frame, self.column))
        return frame


@dataclass(frozen=True)
class Rounding(Constraint):
    """At most `digits` decimals (checked to 1e-9 of a unit in the last place)."""

    column: str
    digits: int
    type = "rounding"

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def satisfied(self, frame: pd.DataFrame) -> np.ndarray:
        scaled = _numbers(frame, self.column) * 10.0**self.digits
        return np.isfinite(scaled) & (np.abs(scaled - np.round(scaled)) <= 1e-6)

    def fix(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame[self.column] = np.round(_numbers(frame, self.column), self.digits)
        return frame


@dataclass(frozen=True)
class FixedCombinations(Constraint):
    """Only these combinations of the columns' values (learned from the training table when
    not declared)."""

    columns_: tuple[str, ...]
    combinations: tuple[tuple[str, ...], ...] | None = field(default=None)
    type = "fixed_combinations"

    @property
    def columns(self) -> list[str]:
        return list(self.columns_)

    def _keys(self, frame: pd.DataFrame) -> pd.Series:
        return frame[list(self.columns_)].astype(str).agg("\x1f".join, axis=1)

    def satisfied(self, frame: pd.DataFrame) -> np.ndarray:
        allowed = {"\x1f".join(c) for c in self.combinations or ()}
        if not len(frame):
            return np.zeros(0, dtype=bool)
        return self._keys(frame).isin(allowed).to_numpy()

    def learn(self, frame: pd.DataFrame) -> FixedCombinations:
        if self.combinations is not None:
            return self
        seen = frame[list(self.columns_)].astype(str).drop_duplicates()
        combos = tuple(sorted(tuple(row) for row in seen.itertuples(index=False)))
        return FixedCombinations(self.columns_, combos)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "columns": list(self.columns_)}
        if self.combinations is not None:
            out["combinations"] = [list(c) for c in self.combinations]
        return out


TYPES: dict[str, Callable[..., Constraint]] = {
    "range": Range,
    "positive": Positive,
    "inequality": Inequality,
    "integer": Integer,
    "rounding": Rounding,
    "fixed_combinations": lambda columns, combinations=None: FixedCombinations(
        tuple(str(c) for c in columns),
        None if combinations is None else tuple(tuple(str(v) for v in c) for c in combinations),
    ),
}


def parse_constraints(items: Sequence[Any] | None) -> list[Constraint]:
    """Constraints from dicts (`{"type": ..., ...}`) or instances; a ConfigError says what is
    wrong with a malformed one."""
    out: list[Constraint] = []
    for i, item in enumerate(items or ()):
        if isinstance(item, Constraint):
            out.append(item)
            continue
        if not isinstance(item, dict) or item.get("type") not in TYPES:
            raise ConfigError(
                f"constraints[{i}]: expected a dict with 'type' one of {sorted(TYPES)}, got "
                f"{item!r}"
            )
        args = {k: v for k, v in item.items() if k != "type"}
        try:
            rule = TYPES[item["type"]](**args)
        except TypeError as exc:
            raise ConfigError(f"constraints[{i}] ({item['type']}): {exc}") from exc
        _check_rule(rule, i)
        out.append(rule)
    return out


def _check_rule(rule: Constraint, i: int) -> None:
    def number(v: Any) -> bool:
        return v is None or (
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        )

    if isinstance(rule, Range) and (
        not number(rule.low) or not number(rule.high) or (rule.low is None and rule.high is None)
        or (rule.low is not None and rule.high is not None and rule.low > rule.high)
    ):  # fmt: skip
        raise ConfigError(f"constraints[{i}] (range): need finite low <= high, got {rule}")
    if isinstance(rule, Rounding) and (
        not isinstance(rule.digits, int) or not 0 <= rule.digits <= 12
    ):
        raise ConfigError(f"constraints[{i}] (rounding): digits must be an int in 0..12")
    if isinstance(rule, FixedCombinations) and len(rule.columns_) < 2:
        raise ConfigError(f"constraints[{i}] (fixed_combinations): name at least 2 columns")


def check(frame: pd.DataFrame, constraints: Sequence[Any]) -> np.ndarray:
    """Boolean mask of the rows of `frame` that satisfy every constraint (dicts or instances;
    fixed_combinations needs its combinations: learned ones come from `fit_constraints`)."""
    mask = np.ones(len(frame), dtype=bool)
    for rule in parse_constraints(constraints):
        mask &= rule.satisfied(frame)
    return mask


def enforce(frame: pd.DataFrame, constraints: Sequence[Constraint]) -> pd.DataFrame:
    """A copy of `frame` with every fixable constraint fixed (clipping, rounding)."""
    frame = frame.copy()
    dtypes = frame.dtypes
    for rule in constraints:
        frame = rule.fix(frame)
    for col in frame.columns:  # keep integer columns integer when the fixes left them whole
        if dtypes[col].kind in "iu" and frame[col].dtype.kind == "f":
            values = frame[col].to_numpy()
            if np.all(np.isfinite(values) & (values == np.round(values))):
                frame[col] = values.astype(dtypes[col])
    return frame


def fit_constraints(items: Sequence[Any] | None, train: pd.DataFrame) -> list[Constraint]:
    """Parse the constraints, check their columns exist, learn what they take from `train`,
    and refuse a training table that violates them (`ConstraintError` with the row count)."""
    rules = parse_constraints(items)
    for i, rule in enumerate(rules):
        missing = [c for c in rule.columns if c not in train.columns]
        if missing:
            raise ConfigError(
                f"constraints[{i}] ({rule.type}): no column {missing}; columns are "
                f"{list(train.columns)}"
            )
    rules = [rule.learn(train) for rule in rules]
    bad = np.zeros(len(train), dtype=bool)
    parts = []
    for rule in rules:
        fails = ~rule.satisfied(train)
        if fails.any():
            parts.append(f"{int(fails.sum())} violate {rule.to_dict()}")
        bad |= fails
    if bad.any():
        rows = np.flatnonzero(bad)[:10].tolist()
        raise ConstraintError(
            f"{int(bad.sum())} training row(s) violate the constraints ({'; '.join(parts)}; "
            f"first rows {rows}); fix or drop them, or drop the constraint",
            count=int(bad.sum()),
        )
    return rules


def constrained(sample: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    """Wrap a synthesizer's `sample(n, conditions=None, seed=None)` so that its rows satisfy
    the fitted `constraints_`: fix what clipping or rounding can fix, draw more rows for what
    must be rejected, and record the accepted share in `constraint_acceptance_` (1.0 when
    nothing was rejected). Identifier surrogates are renumbered over the kept rows."""

    @functools.wraps(sample)
    def wrapper(self: Any, n: int, conditions: Any = None, seed: int | None = None):
        rules = getattr(self, "constraints_", None)
        if not rules:
            return sample(self, n, conditions=conditions, seed=seed)
        n = self._count(n)
        rng = np.random.default_rng(seed)
        kept: list[pd.DataFrame] = []
        done = drawn = 0
        acceptance = 1.0
        for _ in range(MAX_ROUNDS):
            ask = min(max(math.ceil((n - done) / acceptance * 1.1), 1), 100 * max(n, 1))
            part = enforce(sample(self, ask, conditions=conditions, seed=_seed(rng)), rules)
            mask = check_fitted(part, rules)
            drawn += len(part)
            done += int(mask.sum())
            kept.append(part[mask])
            acceptance = max(done / drawn, MIN_ACCEPTANCE)
            if done >= n:
                break
        else:
            raise DataError(
                f"constraints: only {done} of {drawn} sampled rows satisfy them "
                f"({done / max(drawn, 1):.2%}); the model rarely makes such rows. Loosen the "
                "constraints or train longer"
            )
        self.constraint_acceptance_ = done / drawn if drawn else 1.0
        frame = pd.concat(kept, ignore_index=True).iloc[:n]
        return _renumber(self, frame)

    return wrapper


def check_fitted(frame: pd.DataFrame, rules: Sequence[Constraint]) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for rule in rules:
        mask &= rule.satisfied(frame)
    return mask


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


def _renumber(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Fresh identifier surrogates 1..n over rows gathered from several draws."""
    schema = getattr(model, "schema_", None)
    if schema is None or not schema.identifiers:
        return frame
    from gankit.tabular.transform import surrogates

    return frame.assign(**surrogates(schema, len(frame)))[schema.order]


def to_spec(rules: Sequence[Constraint]) -> list[dict[str, Any]]:
    """The fitted constraints for model.json (learned combinations included)."""
    return [rule.to_dict() for rule in rules]
