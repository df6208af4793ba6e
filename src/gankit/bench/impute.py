"""`gankit bench impute`: GANImputer against the classical imputers and a faithful GAIN.

Protocol (GAIN's measure): scikit-learn's breast_cancer, wine and iris; entries removed
completely at random (20% and 50%) or at random given always-observed columns (MAR, 20% of
the other columns' entries); every row keeps at least one value. Each imputer sees the raw
table with NaNs; RMSE is computed on the removed entries only, after min-max scaling both the
complete table and the imputed one with the complete table's per-column min and max. Several
seeds, mean ± standard error; wall time of fit+transform per run. All baselines run in the same
process, one thread for torch.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.ensemble import RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge

from gankit.bench.common import format_table, mean_se
from gankit.tabular.gain import gain_impute
from gankit.tabular.imputer import GANImputer

DATASETS: dict[str, Callable[[], Any]] = {
    "breast": load_breast_cancer,
    "wine": load_wine,
    "iris": load_iris,
}
HEAVY = ("gain", "missforest")
SCENARIOS = {"mcar20": ("mcar", 0.2), "mcar50": ("mcar", 0.5), "mar20": ("mar", 0.2)}

# Measured earlier on this kind of machine (research/tabular.md §B, "My own runs"): 20% MCAR,
# same RMSE; ICE = hyperimpute's BayesianRidge ICE, GAIN-ref = 10k iterations, alpha 100.
REFERENCES = {
    "source": "shared/research/tabular.md, section B, 'My own runs' (mean ± std over 3-5 seeds)",
    "mcar20": {
        "breast": {"mean": 0.144, "mice": 0.050, "missforest": 0.074, "gain": 0.073},
        "iris": {"mean": 0.278, "mice": 0.122, "missforest": 0.121, "gain": 0.161},
        "wine": {"mean": 0.212, "mice": 0.153, "missforest": 0.154, "gain": 0.191},
    },
    "wang_et_al_2022_breast_gain": {
        "value": 0.078,
        "source": "Wang, Akande, Poulos & Li 2022, supplement Table 4.3 (20% MCAR, 10 repeats)",
    },
}


def make_missing(x: np.ndarray, mechanism: str, rate: float, seed: int) -> np.ndarray:
    """Observation mask (True = observed) for MCAR or MAR; every row keeps one value."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    if mechanism == "mcar":
        observed = rng.random((n, d)) >= rate
    else:
        observed = np.ones((n, d), dtype=bool)
        fixed = rng.choice(d, size=max(1, round(0.3 * d)), replace=False)
        others = np.setdiff1d(np.arange(d), fixed)
        z = (x[:, fixed] - x[:, fixed].mean(0)) / (x[:, fixed].std(0) + 1e-12)
        logits = z @ rng.normal(size=(len(fixed), len(others)))
        for j, col in enumerate(others):
            shift = _logit_shift(logits[:, j], rate)
            prob = 1.0 / (1.0 + np.exp(-(logits[:, j] + shift)))
            observed[:, col] = rng.random(n) >= prob
    empty = ~observed.any(1)
    observed[empty, rng.integers(d, size=int(empty.sum()))] = True
    return observed


def _logit_shift(logits: np.ndarray, rate: float) -> float:
    """Intercept so that the mean missingness probability equals `rate` (bisection)."""
    lo, hi = -50.0, 50.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(logits + mid)))) > rate:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def scaled_rmse(x: np.ndarray, imputed: np.ndarray, observed: np.ndarray) -> float:
    """RMSE over the removed entries, both tables scaled by the complete table's min/max."""
    lo, hi = x.min(0), x.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    err = ((x - imputed) / span) ** 2
    return float(np.sqrt(err[~observed].mean()))


def methods(quick: bool) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """Imputer name -> function(table with NaNs, seed) -> completed table."""
    forest_trees, forest_iters = (10, 3) if quick else (50, 5)
    gain_iters = 200 if quick else 10_000
    steps = 50 if quick else 1500

    def missforest(x: np.ndarray, seed: int) -> np.ndarray:
        forest = RandomForestRegressor(
            n_estimators=forest_trees, max_features="sqrt", n_jobs=1, random_state=seed
        )
        return IterativeImputer(forest, max_iter=forest_iters, random_state=seed).fit_transform(x)

    return {
        "mean": lambda x, seed: SimpleImputer().fit_transform(x),
        "knn": lambda x, seed: KNNImputer().fit_transform(x),
        "mice": lambda x, seed: IterativeImputer(
            BayesianRidge(), max_iter=10, random_state=seed
        ).fit_transform(x),
        "missforest": missforest,
        "gain": lambda x, seed: gain_impute(x, iterations=gain_iters, seed=seed),
        "gankit": lambda x, seed: GANImputer(n_steps=steps, random_state=seed).fit_transform(x),
    }


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Every method on every dataset and scenario; RMSE mean ± s.e. and seconds per run."""
    n_seeds = seeds or (2 if quick else 10)
    # Seeds per scenario and method: the 10k-iteration GAIN and the random forests cost minutes
    # per run on the shared 2-core machine (a first attempt needed 10 min for one breast seed),
    # so they run on the first HEAVY seeds only and the 50%/MAR scenarios on fewer seeds.
    plan = {
        "mcar20": (n_seeds, min(n_seeds, 2)),
        "mcar50": (min(n_seeds, 3), 1),
        "mar20": (min(n_seeds, 3), 1),
    }
    datasets = ["iris"] if quick else list(DATASETS)
    scenarios = ["mcar20"] if quick else list(SCENARIOS)
    impute = methods(quick)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    try:
        for scenario in scenarios:
            mechanism, rate = SCENARIOS[scenario]
            for name in datasets:
                x = DATASETS[name]().data.astype(np.float64)
                cell = results.setdefault(scenario, {}).setdefault(name, {})
                cheap_seeds, heavy_seeds = plan[scenario]
                for seed in range(cheap_seeds):
                    observed = make_missing(x, mechanism, rate, seed)
                    holed = np.where(observed, x, np.nan)
                    for method, fn in impute.items():
                        if method in HEAVY and seed >= heavy_seeds:
                            continue
                        start = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            out = fn(holed.copy(), seed)
                        seconds = time.perf_counter() - start
                        entry = cell.setdefault(method, {"rmse": [], "seconds": []})
                        entry["rmse"].append(scaled_rmse(x, out, observed))
                        entry["seconds"].append(seconds)
                    print(f"impute {scenario} {name} seed {seed} done", file=sys.stderr, flush=True)
            # Partial results, so a run stopped early still leaves finished scenarios in the log.
            print(_table(_summarise({scenario: results[scenario]})), file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(torch_threads)
    summary = _summarise(results)
    return {
        "protocol": {
            "datasets": datasets,
            "scenarios": {s: SCENARIOS[s] for s in scenarios},
            "seeds": {s: {"most": plan[s][0], "gain_missforest": plan[s][1]} for s in scenarios},
            "measure": "RMSE on removed entries, complete-table min-max scale",
            "mar": "30% of columns always observed; others missing by a logistic model of them",
            "gain": "reference hyper-parameters (batch 128, hint 0.9, alpha 100, 10k iterations)"
            if not quick
            else "quick: 200 iterations",
            "missforest": "IterativeImputer(RandomForestRegressor(50 trees, max_features='sqrt'"
            " as missForest's mtry), max_iter=5); 100 trees x 10 rounds took 330 s per breast run"
            if not quick
            else "quick: 10 trees, 3 rounds",
            "torch_threads": 1,
        },
        "runs": results,
        "summary": summary,
        "references": REFERENCES,
        "table": _table(summary),
    }


def _summarise(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario, per_data in results.items():
        for name, per_method in per_data.items():
            for method, entry in per_method.items():
                mean, se = mean_se(entry["rmse"])
                secs = float(np.mean(entry["seconds"]))
                out.setdefault(scenario, {}).setdefault(name, {})[method] = {
                    "n": len(entry["rmse"]),
                    "rmse_mean": mean,
                    "rmse_se": se,
                    "seconds_mean": secs,
                }
            best = min(out[scenario][name], key=lambda m: out[scenario][name][m]["rmse_mean"])
            out[scenario][name]["best"] = best
    return out


def _table(summary: dict[str, Any]) -> str:
    rows = []
    method_names: list[str] = []
    for scenario, per_data in summary.items():
        for name, per_method in per_data.items():
            method_names = [m for m in per_method if m != "best"]
            cells = [
                f"{per_method[m]['rmse_mean']:.4f} ± {per_method[m]['rmse_se']:.4f}"
                f" (n={per_method[m]['n']})" + (" *" if m == per_method["best"] else "")
                for m in method_names
            ]
            secs = f"{per_method['gankit']['seconds_mean']:.1f}"
            rows.append([scenario, name, *cells, secs])
    return format_table(["scenario", "dataset", *method_names, "gankit s/run"], rows)
