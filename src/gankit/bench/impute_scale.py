"""`gankit bench impute-scale`: GANImputer's fit time on a wide and on a long table, and the
latency of `transform` on one row (issue 15's goals: 2,000 x 64 in <= 30 s and 100,000 x 20 in
<= 3 min on one CPU thread; one row in <= 1 ms).

The tables are synthetic: a 5-factor model through tanh plus N(0, 0.1^2) noise (columns
correlated and mildly nonlinear), 20% of the entries removed completely at random. Wall and
process CPU seconds are both recorded (on a shared machine the wall time includes waiting for
the CPU). RMSE on the removed entries (min-max scale) is given beside mean imputation's, as a
check that the capped fit still imputes.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

import numpy as np
import torch

from gankit.bench.common import format_table
from gankit.bench.impute import make_missing, scaled_rmse
from gankit.tabular.imputer import GANImputer

SIZES = [(2000, 64), (100_000, 20)]
GOALS_S = {(2000, 64): 30.0, (100_000, 20): 180.0}


def factor_table(n: int, d: int, seed: int = 0) -> np.ndarray:
    """n rows of tanh(5 latent factors @ W) + noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 5))
    return np.tanh(z @ rng.normal(size=(5, d))) + 0.1 * rng.normal(size=(n, d))


def one_row_ms(imp: GANImputer, holed: np.ndarray, calls: int = 200) -> float:
    """Median milliseconds of `transform` on a single row (the numpy fast path)."""
    rows = [holed[i : i + 1] for i in range(min(calls, len(holed)))]
    times = []
    for row in rows:
        start = time.perf_counter()
        imp.transform(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Fit each size once (seed 0) with a progress report; time it and one-row transforms."""
    sizes = [(500, 16), (5000, 8)] if quick else SIZES
    steps = 100 if quick else 1500
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    results = []
    try:
        for n, d in sizes:
            x = factor_table(n, d)
            observed = make_missing(x, "mcar", 0.2, 0)
            holed = np.where(observed, x, np.nan)
            wall, cpu = time.perf_counter(), time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = GANImputer(n_steps=steps, random_state=0, verbose=not quick).fit(holed)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            filled = imp.transform(holed)
            mean_fill = np.where(observed, x, np.nanmean(holed, axis=0))
            results.append(
                {
                    "rows": n,
                    "columns": d,
                    "fit_wall_s": wall,
                    "fit_cpu_s": cpu,
                    "goal_s": GOALS_S.get((n, d)),
                    "one_row_ms": one_row_ms(imp, holed),
                    "rmse": scaled_rmse(x, filled, observed),
                    "rmse_mean_fill": scaled_rmse(x, mean_fill, observed),
                    "n_components": imp.n_components_,
                    "best_step": imp.best_step_,
                }
            )
            print(f"impute-scale {n}x{d}: {wall:.1f} s", file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(before)
    rows = [
        [
            f"{r['rows']:,} x {r['columns']}",
            f"{r['fit_wall_s']:.1f}",
            f"{r['fit_cpu_s']:.1f}",
            "" if r["goal_s"] is None else f"{r['goal_s']:.0f}",
            f"{r['one_row_ms']:.2f}",
            f"{r['rmse']:.4f} (mean {r['rmse_mean_fill']:.4f})",
            r["n_components"],
            r["best_step"],
        ]
        for r in results
    ]
    headers = ["table", "fit wall s", "fit CPU s", "goal s", "1-row ms", "RMSE", "K", "best"]
    return {
        "protocol": {
            "tables": "tanh(5 factors) + noise, 20% MCAR, seed 0",
            "n_steps": steps,
            "torch_threads": 1,
        },
        "results": results,
        "table": format_table(headers, rows),
    }
