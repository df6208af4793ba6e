"""Benchmark protocols, runnable as `gankit bench NAME`.

Each benchmark is a module with `run(quick: bool, seeds: int | None) -> dict` returning its
figures, the published reference rows it compares with, and a printable `table` string.
`run_benchmark` adds the environment and writes `NAME.json`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from gankit.bench.common import environment, write_result
from gankit.errors import ConfigError

# name -> module implementing run(); explicit so a reader sees every benchmark in one place.
BENCHMARKS: dict[str, str] = {
    "throughput": "gankit.bench.throughput",
    "metrics": "gankit.bench.metrics",
    "impute": "gankit.bench.impute",
    "impute-scale": "gankit.bench.impute_scale",
    "synth": "gankit.bench.synth",
    "ring": "gankit.bench.ring",
    "grid": "gankit.bench.grid",
    "mode-coverage": "gankit.bench.mode_coverage",
    "stacked-digits": "gankit.bench.stacked_digits",
    "digits": "gankit.bench.digits",
    "conditional": "gankit.bench.conditional",
    "infogan": "gankit.bench.infogan",
    "ssl": "gankit.bench.ssl",
    "vae": "gankit.bench.vae",
    "bigan": "gankit.bench.bigan",
    "cyclegan": "gankit.bench.cyclegan",
    "progan": "gankit.bench.progan",
    "serve": "gankit.bench.serve",
    "ddp": "gankit.bench.ddp",
    "privacy": "gankit.bench.privacy",
    "augment": "gankit.bench.augment",
}


PLOTTING = ("ring", "grid", "mode-coverage")  # benchmarks that save scatter plots (`plot_dir`)


def run_benchmark(
    name: str,
    quick: bool = False,
    seeds: int | None = None,
    out: str | Path | None = None,
    plot_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run one benchmark, print its table, and write `NAME.json` into `out` (if given)."""
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    if plot_dir is not None and name not in PLOTTING:
        raise ConfigError(f"--plots applies to {' and '.join(PLOTTING)} only, not {name!r}")
    module = importlib.import_module(BENCHMARKS[name])
    extra = {} if plot_dir is None else {"plot_dir": str(plot_dir)}
    result = module.run(quick=quick, seeds=seeds, **extra)
    result = {"benchmark": name, "quick": quick, **result, "environment": environment()}
    print(result.get("table", ""))
    if out is not None:
        path = write_result(Path(out) / f"{name}.json", result)
        print(f"wrote {path}", file=sys.stderr)
    return result
