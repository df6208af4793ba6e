"""The one exception family of gankit.

Every error a user can cause is a `GankitError`. Messages name the file, key or column, what was
found and what was expected, so the CLI can print them as one line without a traceback.
"""

from __future__ import annotations


class GankitError(Exception):
    """Base class for every error gankit raises on purpose."""


class ConfigError(GankitError, ValueError):
    """A configuration key, type or value is wrong."""


class DataError(GankitError, ValueError):
    """Input data is missing, malformed or out of range."""


class ConstraintError(DataError):
    """Rows violate declared constraints; `count` says how many."""

    def __init__(self, message: str, count: int = 0) -> None:
        super().__init__(message)
        self.count = count


class CheckpointError(GankitError):
    """A run or model directory is missing, incomplete, corrupted or tampered with."""


class TrainingError(GankitError):
    """Training diverged or collapsed and was stopped by the watchdog."""


class DependencyError(GankitError, ImportError):
    """An optional extra is needed but not installed."""


def require(module: str, extra: str):
    """Import an optional dependency or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{module!r} is not installed; install it with: pip install 'gankit[{extra}]'"
        ) from exc
