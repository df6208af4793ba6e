"""`gankit bench impute`: GANImputer against the classical imputers and a faithful GAIN.

Protocol (GAIN's measure): the real tables breast_cancer, wine, iris and diabetes and the
nonlinear tables of `impute_tables.py`; entries removed completely at random (MCAR 20%), at
random given always-observed columns (MAR 30%: 30% of the columns always observed, the others
missing through a logistic model of them) or not at random (MNAR 30%, self-masking: an entry's
chance to go missing rises with its own value); every row keeps at least one value. Each
imputer sees the raw table with NaNs; RMSE is computed on the removed entries only, after
min-max scaling both the complete table and the imputed one with the complete table's
per-column min and max. Mean ± standard error over seeds; wall time of fit+transform per run.
All baselines run in the same process, one thread for torch.

GANImputer is reported three ways (the ablation of issue 15): `gankit` (mixture + network,
the default), `gankit-mixture` (the same fit with the network bypassed: the mixture's
conditional expectation) and `gankit-network` (`stages="network"`: the network refines
column means, no cross-column mixture). Its multiple imputations are scored too: `DRAWS`
completed tables from `transform_multiple`, the central 90% interval of each removed entry
(order statistics, see `impute_calibration.py`), its coverage and width, and Rubin's rules on a
regression of the last column on the others (coverage of the complete-data coefficients).
`gankit-selfmask` is `missing_mechanism="self-masking"` (a logistic self-masking model fitted
with the mixture; no network stage), run in every scenario, with its own interval coverage.
`miwae` is `MIWAEImputer` (Mattei & Frellsen 2019), the second estimator: its point estimate,
fit seconds and the coverage / width of `DRAWS` SIR draws (`skip=("miwae",)` leaves it out).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import BayesianRidge

from gankit.bench.common import format_table, mean_se
from gankit.bench.impute_calibration import interval_scores, rubin_coverage
from gankit.bench.impute_tables import NONLINEAR, REAL, load_table
from gankit.tabular.gain import gain_impute
from gankit.tabular.imputer import GANImputer
from gankit.tabular.miwae import MIWAEImputer

DATASETS = [*REAL, *NONLINEAR]
# Methods whose runs cost minutes on the shared 2-core machine: fewer seeds (HEAVY_SEEDS).
HEAVY = ("gain", "missforest", "miceforest", "ice-extratrees")
SCENARIOS = {"mcar20": ("mcar", 0.2), "mar30": ("mar", 0.3), "mnar30": ("mnar", 0.3)}
MNAR_SLOPE = 2.0
DRAWS = 39  # with k = 2 the [X_(2), X_(38)] interval of 39 draws is an exact 90% interval
GANKIT = ("gankit", "gankit-mixture", "gankit-network", "gankit-selfmask")
# GANImputer's variants reported beside the default but not competing for "best": the two
# ablations and the self-masking (MNAR) model, an option, not the default.
VARIANTS = ("gankit-mixture", "gankit-network", "gankit-selfmask")

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
    """Observation mask (True = observed) for MCAR, MAR or MNAR; every row keeps one value."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    if mechanism == "mcar":
        observed = rng.random((n, d)) >= rate
    elif mechanism == "mnar":
        # self-masking: each entry goes missing with a probability that rises with its own
        # (standardised) value, logit = 2 z + shift, the shift set per column for `rate`
        z = (x - x.mean(0)) / (x.std(0) + 1e-12)
        observed = np.ones((n, d), dtype=bool)
        for col in range(d):
            logits = MNAR_SLOPE * z[:, col]
            prob = 1.0 / (1.0 + np.exp(-(logits + _logit_shift(logits, rate))))
            observed[:, col] = rng.random(n) >= prob
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
    """Baseline name -> function(table with NaNs, seed) -> completed table (GANImputer apart)."""
    forest_trees, forest_iters = (10, 3) if quick else (50, 5)
    gain_iters = 200 if quick else 10_000

    def missforest(x: np.ndarray, seed: int) -> np.ndarray:
        forest = RandomForestRegressor(
            n_estimators=forest_trees, max_features="sqrt", n_jobs=1, random_state=seed
        )
        return IterativeImputer(forest, max_iter=forest_iters, random_state=seed).fit_transform(x)

    def extra_trees(x: np.ndarray, seed: int) -> np.ndarray:
        trees = ExtraTreesRegressor(n_estimators=forest_trees, n_jobs=1, random_state=seed)
        return IterativeImputer(trees, max_iter=forest_iters, random_state=seed).fit_transform(x)

    table = {
        "mean": lambda x, seed: SimpleImputer().fit_transform(x),
        "knn": lambda x, seed: KNNImputer().fit_transform(x),
        "mice": lambda x, seed: IterativeImputer(
            BayesianRidge(), max_iter=10, random_state=seed
        ).fit_transform(x),
        "ice-extratrees": extra_trees,
        "missforest": missforest,
        "gain": lambda x, seed: gain_impute(x, iterations=gain_iters, seed=seed),
    }
    if miceforest_available() and not quick:  # an optional extra: `make test` runs without it
        table["miceforest"] = lambda x, seed: miceforest_impute(x, seed)
    return table


def miceforest_available() -> bool:
    """miceforest (LightGBM chained equations) is a benchmark-only extra (`bench-impute`)."""
    try:
        import miceforest  # noqa: F401
    except ImportError:
        return False
    return True


def miceforest_impute(x: np.ndarray, seed: int, iterations: int = 5) -> np.ndarray:
    """miceforest's kernel, one dataset, LightGBM predictions without mean matching (the
    point prediction is what RMSE rewards; mean matching draws observed donor values)."""
    import miceforest as mf

    frame = pd.DataFrame(x, columns=[f"c{j}" for j in range(x.shape[1])])
    kernel = mf.ImputationKernel(frame, num_datasets=1, mean_match_candidates=0, random_state=seed)
    kernel.mice(iterations, num_threads=1, verbose=False)
    return kernel.complete_data(0).to_numpy(dtype=np.float64)


def gankit_runs(
    holed: np.ndarray, seed: int, quick: bool, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The GANImputer ablations, the self-masking variant and the calibration of the draws;
    a variant named in `skip` (`gankit-network`, `gankit-selfmask`) is not run."""
    steps = 50 if quick else 1500
    start = time.perf_counter()
    imp = GANImputer(n_steps=steps, random_state=seed).fit(holed)
    full = imp.transform(holed)
    seconds = time.perf_counter() - start
    best = imp.best_step_
    imp.best_step_ = 0  # the same mixture with the network bypassed
    mixture = imp.transform(holed)
    imp.best_step_ = best
    draws = np.stack(imp.set_params(random_state=seed + 1).transform_multiple(holed, DRAWS))
    out: dict[str, Any] = {"gankit": (full, seconds), "gankit-mixture": (mixture, seconds)}
    if "gankit-network" not in skip:
        start = time.perf_counter()
        network = GANImputer(n_steps=steps, random_state=seed, stages="network")
        out["gankit-network"] = (network.fit_transform(holed), time.perf_counter() - start)
    if "gankit-selfmask" not in skip:
        start = time.perf_counter()
        masked = GANImputer(missing_mechanism="self-masking", random_state=seed).fit(holed)
        out["gankit-selfmask"] = (masked.transform(holed), time.perf_counter() - start)
        masked.set_params(random_state=seed + 1)
        out["selfmask_draws"] = np.stack(masked.transform_multiple(holed, DRAWS))
    return {
        **out,
        "draws": draws,
        "best_step": best,
        "n_components": imp.n_components_,
    }


def miwae_run(holed: np.ndarray, seed: int, quick: bool) -> dict[str, Any]:
    """MIWAEImputer's fill (with its fit + transform seconds) and DRAWS SIR draws."""
    start = time.perf_counter()
    imp = MIWAEImputer(n_steps=100 if quick else 3000, random_state=seed).fit(holed)
    fill, seconds = imp.transform(holed), time.perf_counter() - start
    draws = np.stack(imp.set_params(random_state=seed + 1).transform_multiple(holed, DRAWS))
    return {"miwae": (fill, seconds), "draws": draws, "best_step": imp.best_step_}


def run(
    quick: bool = False,
    seeds: int | None = None,
    tables: list[str] | None = None,
    scenarios: list[str] | None = None,
    heavy_seeds: int | None = None,
    skip: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every method on every table and scenario: RMSE mean ± s.e., seconds per run, the
    ablation, the 90% interval coverage and width, and Rubin's-rules coverage."""
    n_seeds = seeds or (1 if quick else 5)
    n_heavy = heavy_seeds if heavy_seeds is not None else (1 if quick else 2)
    tables = tables or (["iris"] if quick else list(DATASETS))
    scenarios = scenarios or (["mcar20"] if quick else list(SCENARIOS))
    impute = {k: v for k, v in methods(quick).items() if k not in skip}
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    calibration: dict[str, Any] = {}
    try:
        for scenario in scenarios:
            mechanism, rate = SCENARIOS[scenario]
            for name in tables:
                cell = results.setdefault(scenario, {}).setdefault(name, {})
                calib = calibration.setdefault(scenario, {}).setdefault(
                    name,
                    {
                        "coverage": [],
                        "width": [],
                        "rubin": [0, 0],
                        "best_step": [],
                        "selfmask_coverage": [],
                        "selfmask_width": [],
                        "miwae_coverage": [],
                        "miwae_width": [],
                    },
                )
                for seed in range(n_seeds):
                    x = load_table(name, seed)
                    observed = make_missing(x, mechanism, rate, seed)
                    holed = np.where(observed, x, np.nan)
                    for method, fn in impute.items():
                        if method in HEAVY and seed >= n_heavy:
                            continue
                        start = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            out = fn(holed.copy(), seed)
                        _record(cell, method, x, out, observed, time.perf_counter() - start)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        runs = gankit_runs(holed.copy(), seed, quick, skip)
                    for method in (m for m in GANKIT if m in runs):
                        _record(cell, method, x, *runs[method][:1], observed, runs[method][1])
                    _calibrate(calib, x, observed, runs)
                    if "miwae" not in skip:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            mi = miwae_run(holed.copy(), seed, quick)
                        _record(cell, "miwae", x, *mi["miwae"][:1], observed, mi["miwae"][1])
                        scores = interval_scores(x, mi["draws"], ~observed)
                        calib["miwae_coverage"].append(scores["coverage"])
                        calib["miwae_width"].append(scores["width"])
                    print(f"impute {scenario} {name} seed {seed} done", file=sys.stderr, flush=True)
            # Partial results, so a run stopped early still leaves finished scenarios in the log.
            part = _summarise({scenario: results[scenario]}, {scenario: calibration[scenario]})
            print(_table(part), file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(torch_threads)
    summary = _summarise(results, calibration)
    return {
        "protocol": {
            "tables": tables,
            "scenarios": {s: SCENARIOS[s] for s in scenarios},
            "seeds": {"most": n_seeds, "heavy": n_heavy, "heavy_methods": list(HEAVY)},
            "measure": "RMSE on removed entries, complete-table min-max scale",
            "mar": "30% of columns always observed; others missing by a logistic model of them",
            "mnar": f"self-masking: logit = {MNAR_SLOPE} * standardised own value + shift",
            "gain": "reference hyper-parameters (batch 128, hint 0.9, alpha 100, 10k iterations)"
            if not quick
            else "quick: 200 iterations",
            "missforest": "IterativeImputer(RandomForestRegressor(50 trees, max_features='sqrt'"
            " as missForest's mtry), max_iter=5)"
            if not quick
            else "quick: 10 trees, 3 rounds",
            "ice-extratrees": "IterativeImputer(ExtraTreesRegressor(50 trees), max_iter=5)",
            "miceforest": "miceforest ImputationKernel, 5 iterations, mean_match_candidates=0"
            if miceforest_available()
            else "not installed (pip install miceforest 'lightgbm<4.6')",
            "calibration": f"{DRAWS} draws of transform_multiple; central 90% interval from "
            "order statistics 2 and 38; Rubin's rules (95% CI) on OLS of the last column",
            "torch_threads": 1,
        },
        "runs": results,
        "calibration": calibration,
        "summary": summary,
        "references": REFERENCES,
        "table": _table(summary),
    }


def _record(
    cell: dict[str, Any],
    method: str,
    x: np.ndarray,
    out: np.ndarray,
    observed: np.ndarray,
    seconds: float,
) -> None:
    entry = cell.setdefault(method, {"rmse": [], "seconds": []})
    entry["rmse"].append(scaled_rmse(x, out, observed))
    entry["seconds"].append(seconds)


def _calibrate(calib: dict[str, Any], x: np.ndarray, observed: np.ndarray, runs: dict) -> None:
    scores = interval_scores(x, runs["draws"], ~observed)
    calib["coverage"].append(scores["coverage"])
    calib["width"].append(scores["width"])
    calib["best_step"].append(runs["best_step"])
    if "selfmask_draws" in runs:
        masked = interval_scores(x, runs["selfmask_draws"], ~observed)
        calib["selfmask_coverage"].append(masked["coverage"])
        calib["selfmask_width"].append(masked["width"])
    rubin = rubin_coverage(x, list(runs["draws"]))
    calib["rubin"][0] += rubin["covered"]
    calib["rubin"][1] += rubin["total"]


def _summarise(results: dict[str, Any], calibration: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario, per_data in results.items():
        for name, per_method in per_data.items():
            row = out.setdefault(scenario, {}).setdefault(name, {})
            for method, entry in per_method.items():
                mean, se = mean_se(entry["rmse"])
                row[method] = {
                    "n": len(entry["rmse"]),
                    "rmse_mean": mean,
                    "rmse_se": se,
                    "seconds_mean": float(np.mean(entry["seconds"])),
                }
            scored = [m for m in row if m not in VARIANTS]
            row["best"] = min(scored, key=lambda m: row[m]["rmse_mean"])
            calib = calibration[scenario][name]
            row["calibration"] = {
                "coverage": float(np.mean(calib["coverage"])),
                "width": float(np.mean(calib["width"])),
                "rubin_coverage": calib["rubin"][0] / max(calib["rubin"][1], 1),
                "rubin_n": calib["rubin"][1],
                "best_steps": calib["best_step"],
                "selfmask_coverage": _mean(calib["selfmask_coverage"]),
                "selfmask_width": _mean(calib["selfmask_width"]),
                "miwae_coverage": _mean(calib.get("miwae_coverage", [])),
                "miwae_width": _mean(calib.get("miwae_width", [])),
            }
    return out


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _table(summary: dict[str, Any]) -> str:
    rows = []
    names: list[str] = []
    for scenario, per_data in summary.items():
        for name, row in per_data.items():
            names = [m for m in row if m not in ("best", "calibration")]
            cells = [
                f"{row[m]['rmse_mean']:.4f} ± {row[m]['rmse_se']:.4f}"
                + (f" (n={row[m]['n']})" if m in HEAVY else "")
                + (" *" if m == row["best"] else "")
                for m in names
            ]
            c = row["calibration"]
            rows.append(
                [
                    scenario,
                    name,
                    *cells,
                    f"{row['gankit']['seconds_mean']:.1f}",
                    f"{c['coverage']:.3f} / {c['width']:.3f}",
                    f"{c['selfmask_coverage']:.3f} / {c['selfmask_width']:.3f}",
                    f"{c['rubin_coverage']:.2f}",
                    ",".join(str(b) for b in c["best_steps"]),
                    _miwae_cells(row),
                ]
            )
    headers = [
        "scenario",
        "table",
        *names,
        "gankit s/fit",
        "90% cover / width",
        "self-masking cover / width",
        "Rubin",
        "best",
        "miwae s/fit, 90% cover / width",
    ]
    return format_table(headers, rows)


def _miwae_cells(row: dict[str, Any]) -> str:
    """MIWAE's seconds per fit and its draws' coverage / width ("-" when skipped)."""
    if "miwae" not in row:
        return "-"
    c = row["calibration"]
    return f"{row['miwae']['seconds_mean']:.1f}, {c['miwae_coverage']:.3f} / {c['miwae_width']:.3f}"


def categorical_run(seeds: int = 3, quick: bool = False) -> dict[str, Any]:
    """Error rate on removed class labels: each table with its class as a text column, 20%
    MCAR over every column. GANImputer (one-hot column, arg-max) against MissForest (the
    forest chain on the numbers with the label's codes, then a RandomForestClassifier on the
    completed features for the removed labels, as missForest treats a factor) and the mode."""
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine

    loaders = {"iris": load_iris, "wine": load_wine, "breast": load_breast_cancer}
    trees = 10 if quick else 50
    out: dict[str, Any] = {}
    for name, loader in loaders.items():
        if quick and name != "iris":
            continue
        data = loader()
        labels = np.asarray(data.target_names)[data.target].astype(object)
        rates: dict[str, list[float]] = {"mode": [], "missforest": [], "gankit": []}
        for seed in range(seeds):
            full = np.column_stack([data.data, data.target.astype(np.float64)])
            observed = make_missing(full, "mcar", 0.2, seed)
            miss = ~observed[:, -1]
            frame = pd.DataFrame(np.where(observed[:, :-1], data.data, np.nan))
            frame.columns = [f"c{j}" for j in frame.columns]
            frame["label"] = pd.Series(np.where(miss, None, labels), dtype=object)
            truth = labels[miss]
            mode = frame["label"].mode()[0]
            rates["mode"].append(float(np.mean(truth != mode)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                filled = GANImputer(random_state=seed).fit_transform(frame)
            rates["gankit"].append(float(np.mean(filled["label"].to_numpy()[miss] != truth)))
            rates["missforest"].append(_missforest_labels(full, observed, labels, seed, trees))
        out[name] = {k: {"mean": mean_se(v)[0], "se": mean_se(v)[1]} for k, v in rates.items()}
    rows = [
        [
            name,
            *(f"{r[m]['mean']:.3f} ± {r[m]['se']:.3f}" for m in ("mode", "missforest", "gankit")),
        ]
        for name, r in out.items()
    ]
    return {
        "summary": out,
        "seeds": seeds,
        "table": format_table(["table", "mode", "missforest", "gankit"], rows),
    }


def _missforest_labels(
    full: np.ndarray, observed: np.ndarray, labels: np.ndarray, seed: int, trees: int
) -> float:
    """missForest on a table with one factor: forests on the numbers (the factor's codes
    included as a number), then a forest classifier for the removed labels."""
    holed = np.where(observed, full, np.nan)
    forest = RandomForestRegressor(
        n_estimators=trees, max_features="sqrt", n_jobs=1, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled = IterativeImputer(forest, max_iter=5, random_state=seed).fit_transform(holed)
    miss = ~observed[:, -1]
    clf = RandomForestClassifier(n_estimators=trees, n_jobs=1, random_state=seed)
    clf.fit(filled[~miss, :-1], labels[~miss])
    return float(np.mean(clf.predict(filled[miss, :-1]) != labels[miss]))
