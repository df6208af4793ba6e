"""The search space: distributions over config keys (or estimator parameters), read from YAML."""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import (
    ConfigError,
)

SAMPLERS = ("grid", "random", "tpe")


KINDS = ("uniform", "log_uniform", "int", "log_int", "choice")


GRID_POINTS = 3  # points per continuous range under the grid sampler (unless `grid:` is given)


@dataclass
class Param:
    """One searched key: a range (`uniform`, `log_uniform`, `int`, `log_int`) or `choice`s."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: list[Any] = field(default_factory=list)
    grid: list[Any] | None = None

    def _encoded(self) -> list[Any]:
        """Optuna's categorical values are scalars: lists and mappings travel as JSON text."""
        if all(c is None or isinstance(c, bool | int | float | str) for c in self.choices):
            return list(self.choices)
        return [json.dumps(c) for c in self.choices]

    def decode(self, value: Any) -> Any:
        if self.kind == "choice" and self._encoded() != list(self.choices):
            return self.choices[self._encoded().index(value)]
        return value

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return self.decode(trial.suggest_categorical(self.key, self._encoded()))
        if self.kind in ("int", "log_int"):
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), log=self.kind == "log_int"
            )
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log_uniform")

    def extremes(self) -> list[Any]:
        """The values that must all be valid: both ends, or every choice."""
        if self.kind == "choice":
            return list(self.choices)
        cast = int if self.kind in ("int", "log_int") else float
        return [cast(self.low), cast(self.high)]

    def grid_values(self) -> list[Any]:
        """The points the grid sampler visits (encoded as Optuna stores them)."""
        if self.kind == "choice":
            return self._encoded()
        if self.grid is not None:
            return list(self.grid)
        if self.kind in ("int", "log_int") and self.high - self.low < 16:
            return list(range(int(self.low), int(self.high) + 1))
        log = self.kind.startswith("log")
        lo, hi = (math.log(self.low), math.log(self.high)) if log else (self.low, self.high)
        points = [lo + (hi - lo) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
        points = [math.exp(p) for p in points] if log else points
        if self.kind in ("int", "log_int"):
            return sorted({round(p) for p in points})
        return points


def parse_space(space: dict[str, Any] | str | os.PathLike, where: str = "space") -> list[Param]:
    """The search space from a mapping or a YAML file, checked for form (not for keys)."""
    if not isinstance(space, dict):
        path = Path(space)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such search-space file")
        try:
            space = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(space, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to distributions")
    if not space:
        raise ConfigError(f"{where}: the search space is empty")
    return [_param(where, str(key), spec) for key, spec in space.items()]


def _param(where: str, key: str, spec: Any) -> Param:
    at = f"{where}: {key}"
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{at}: expected a list of choices or one of {{{', '.join(KINDS)}: ...}}, got {spec!r}"
        )
    grid = spec.get("grid")
    kinds = [k for k in spec if k != "grid"]
    if len(kinds) != 1 or kinds[0] not in KINDS:
        raise ConfigError(
            f"{at}: expected exactly one of {', '.join(KINDS)} (plus an optional grid), got "
            f"{sorted(spec)}{did_you_mean(str(kinds[0]) if kinds else '', KINDS)}"
        )
    kind, value = kinds[0], spec[kinds[0]]
    if grid is not None and not (isinstance(grid, list) and grid):
        raise ConfigError(f"{at}: grid must be a non-empty list of values, got {grid!r}")
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{at}: choices must be a non-empty list, got {value!r}")
        return Param(key, kind, choices=value, grid=grid)
    value = [_number(v) for v in value] if isinstance(value, list) else value
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{at}: {kind} needs [low, high] (two numbers), got {value!r}")
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{at}: {kind} needs finite low < high, got [{low}, {high}]")
    if kind in ("int", "log_int") and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{at}: {kind} bounds must be whole numbers, got [{low}, {high}]")
    if kind.startswith("log") and low <= 0:
        raise ConfigError(f"{at}: {kind} needs low > 0, got {low}")
    return Param(key, kind, float(low), float(high), grid=grid)


def _number(value: Any) -> Any:
    """PyYAML reads `1e-5` (no dot) as text: accept it as a number."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def did_you_mean(name: str, valid: Any) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


def trial_config(
    config: str | os.PathLike, overrides: Sequence[str], params: dict[str, Any], **fixed: Any
):
    """The config of one trial: the recipe, the user's overrides, the trial's values, `fixed`."""
    from gankit.config import load_config

    items = [*overrides, *(_override(k, v) for k, v in params.items())]
    items += [_override(k, v) for k, v in fixed.items()]
    return load_config(config, items)


def check_space(
    config: str | os.PathLike, space: list[Param], overrides: Sequence[str] = (), where: str = ""
) -> None:
    """Every key must be a config key and every end of its range a valid value: each is checked
    by building the config with it (gankit.config's own validation)."""
    for param in space:
        for value in param.extremes():
            try:
                trial_config(config, overrides, {param.key: value})
            except ConfigError as exc:
                raise ConfigError(f"{where or 'space'}: {param.key}: {exc}") from exc


def grid_size(space: list[Param]) -> int:
    return math.prod(len(p.grid_values()) for p in space)
