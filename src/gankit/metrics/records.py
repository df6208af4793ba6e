"""Every metric value travels with its protocol: a `MetricRecord`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


def gankit_version() -> str:
    """The installed gankit version (package metadata; the source tree's when not installed)."""
    try:
        from importlib.metadata import version

        return version("gankit")
    except Exception:  # pragma: no cover - running from an uninstalled tree
        return "unknown"


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats by None so records stay valid strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@dataclass
class MetricRecord:
    """One metric result with everything needed to reproduce or compare it.

    `value` is the headline number; `details` holds the rest (std, per-σ scores, quantiles…).
    `extractor_sha256` is the SHA-256 of the feature extractor's weights file (None for raw
    pixels). `preprocessing` names what was done to samples before the extractor.
    """

    metric: str
    value: float | None
    extractor: str
    extractor_sha256: str | None
    n_real: int
    n_fake: int
    seed: int
    preprocessing: str
    details: dict[str, Any] = field(default_factory=dict)
    protocol: str = ""
    gankit_version: str = field(default_factory=gankit_version)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become null)."""
        return _json_safe(asdict(self))
