"""`gankit bench synth`: TabularGAN against the `ctgan` package, same steps and same wall time.

TabularVAE (TVAE) runs beside TabularGAN with the same steps ("gankit TVAE" rows), and ctgan's
TVAE beside it when the package is installed ("ctgan TVAE (same steps)").

Protocol: scikit-learn's breast_cancer and wine as DataFrames with `target` as a string
discrete column; per seed a 70/30 stratified split; each synthesizer is fitted on the 70%
and samples as many rows. Utility = train-on-synthetic, test-on-real (TSTR) accuracy and macro
F1 of logistic regression (standardised) and a random forest on the real 30%, next to the
same classifiers trained on the real 70% (TRTR). Fidelity = column shapes (1 - KS for numbers,
1 - total variation for categories) and pair-correlation similarity (1 - |rho_r - rho_s| / 2),
both against the training table. Privacy = median distance to the closest training record
(synthetic -> train and holdout -> train, numbers min-max scaled, categories one-hot).
ctgan (BUSL-1.1, optional, not a gankit dependency) is run with the same number of optimisation
steps (its epochs are single steps on these tables: n < batch size 500) and with as many
steps as fit in gankit's wall time; its rows are skipped with a message when it is absent.

Conditioning (issue 14): gankit's TabularGAN is fitted with `class_column="target"`; for each
class, 200 rows sampled with `conditions={"target": class}` are labelled by a random forest
trained on the real 70 %: "agreement" is the share it assigns to the requested class (the
column itself is written in, so agreement measures the rest of the row); "acceptance" is the
share of generated rows whose generated class was the requested one (the others are dropped).
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gankit.bench.common import format_table, mean_se
from gankit.tabular.fidelity import column_shape_score, correlation_score
from gankit.tabular.synthesizer import TabularGAN
from gankit.tabular.tvae import TabularVAE

DATASETS = {"breast": load_breast_cancer, "wine": load_wine}
REFERENCES = {
    "source": "shared/research/tabular.md, section D, 'My CTGAN runs' (one seed, 70/30 split)",
    "ctgan_1000_steps_batch_500": {
        "breast": {"rf_acc": 0.90, "lr_acc": 0.87, "quality": 0.72},
        "wine": {"rf_acc": 0.96, "lr_acc": 0.98, "quality": 0.81},
    },
    "trtr": {"breast": {"rf_acc": 0.953, "lr_acc": 0.959}, "wine": {"rf_acc": 1.0, "lr_acc": 1.0}},
}


def load_table(name: str) -> pd.DataFrame:
    """The dataset as a DataFrame whose `target` holds the class names (a discrete column)."""
    bunch = DATASETS[name](as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = frame["target"].map(dict(enumerate(bunch.target_names))).astype(str)
    return frame


def utility(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[str, float]:
    """Accuracy and macro F1 of two classifiers trained on `train`, tested on `test`."""
    out = {}
    x_train, y_train = train.drop(columns="target").to_numpy(float), train["target"]
    x_test, y_test = test.drop(columns="target").to_numpy(float), test["target"]
    models = {
        "lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "rf": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
    }
    for key, model in models.items():
        if y_train.nunique() < 2:  # a collapsed synthesizer: predict its single class
            pred = np.full(len(y_test), y_train.iloc[0])
        else:
            pred = model.fit(x_train, y_train).predict(x_test)
        out[f"{key}_acc"] = float(accuracy_score(y_test, pred))
        out[f"{key}_f1"] = float(f1_score(y_test, pred, average="macro"))
    return out


def scores(
    model: TabularGAN | TabularVAE,
    synth: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    seed: int,
) -> dict[str, float]:
    """Utility, fidelity and distance-to-closest-record of one synthetic table."""
    result = utility(synth, test, seed)
    result["shape"] = column_shape_score(train, synth, model.schema_)
    result["pairs"] = correlation_score(train, synth, model.schema_)
    dcr_synth = model.distance_to_closest_record(synth)
    result["dcr_synth"] = float(np.median(dcr_synth))
    result["dcr_holdout"] = float(np.median(model.distance_to_closest_record(test)))
    result["exact_copies"] = int((dcr_synth <= 1e-9).sum())
    return result


def conditioning(model: TabularGAN, train: pd.DataFrame, seed: int, n: int = 200) -> dict:
    """Per class: the share of `n` rows sampled with `conditions={"target": class}` that a
    random forest trained on the real rows assigns to that class, and the sampler's
    acceptance (generated class = requested class)."""
    forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    forest.fit(train.drop(columns="target").to_numpy(float), train["target"])
    out = {}
    for cls in sorted(train["target"].unique()):
        rows = model.sample(n, conditions={"target": cls}, seed=seed)
        pred = forest.predict(rows.drop(columns="target").to_numpy(float))
        out[f"agree_{cls}"] = float(np.mean(pred == cls))
        out[f"accept_{cls}"] = float(model.condition_acceptance_)
    return out


def _ctgan():
    try:
        from ctgan import CTGAN
    except ImportError:
        return None
    return CTGAN


def fit_ctgan(ctgan_cls, train: pd.DataFrame, steps: int, seed: int):
    """ctgan's CTGAN (or TVAE) with its defaults (batch 500; CTGAN pac 10); epochs = steps
    since n < 500."""
    model = ctgan_cls(epochs=steps, batch_size=500, verbose=False)
    model.set_random_state(seed)
    start = time.perf_counter()
    model.fit(train, discrete_columns=["target"])
    return model, time.perf_counter() - start


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Every synthesizer on every dataset and seed; means ± s.e. of each score."""
    n_seeds = seeds or (1 if quick else 2)
    # 600 steps = twice ctgan's default budget on these tables (300 epochs of one step each);
    # more seeds and steps did not fit the shared 2-core machine's time.
    steps = 30 if quick else 600
    datasets = ["wine"] if quick else list(DATASETS)
    ctgan_cls = None if quick else _ctgan()
    notes = []
    if ctgan_cls is None:
        notes.append(
            "ctgan rows skipped: "
            + (
                "quick mode"
                if quick
                else "the `ctgan` package is absent (pip install ctgan; see docs/tabular.md)"
            )
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # both libraries on one thread: ctgan on 2 was 6-8x slower here
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for name in datasets:
            table = load_table(name)
            per = runs.setdefault(name, {})
            for seed in range(n_seeds):
                train, test = train_test_split(
                    table, test_size=0.3, random_state=seed, stratify=table["target"]
                )
                per.setdefault("real (TRTR)", []).append(utility(train, test, seed))
                _run_seed(per, train, test, seed, steps, ctgan_cls)
                print(f"synth {name} seed {seed} done", file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(threads)
    summary = {
        name: {
            method: {k: mean_se([r[k] for r in rows]) for k in rows[0]}
            for method, rows in per.items()
        }
        for name, per in runs.items()
    }
    return {
        "protocol": {
            "datasets": datasets,
            "seeds": n_seeds,
            "steps": steps,
            "split": "70/30 stratified",
            "classifiers": "StandardScaler+LogisticRegression; RandomForest(100)",
            "fidelity": "against the training table",
            "notes": notes,
        },
        "runs": runs,
        "summary": summary,
        "references": REFERENCES,
        "table": _table(summary),
    }


def _run_seed(per, train, test, seed, steps, ctgan_cls) -> None:
    start = time.perf_counter()
    model = TabularGAN(n_steps=steps, random_state=seed, class_column="target")
    model.fit(train, ["target"], holdout=test)
    seconds = time.perf_counter() - start
    synth = model.sample(len(train), seed=seed)
    row = scores(model, synth, train, test, seed)
    row.update(seconds=seconds, ms_per_step=1000 * model.train_seconds_ / steps, steps=steps)
    per.setdefault("gankit", []).append(row)
    per.setdefault("gankit conditioning", []).append(conditioning(model, train, seed))
    start = time.perf_counter()
    tvae = TabularVAE(n_steps=steps, random_state=seed).fit(train, ["target"], holdout=test)
    seconds_tvae = time.perf_counter() - start
    row = scores(tvae, tvae.sample(len(train), seed=seed), train, test, seed)
    ms = 1000 * tvae.train_seconds_ / steps
    row.update(seconds=seconds_tvae, ms_per_step=ms, steps=steps)
    per.setdefault("gankit TVAE", []).append(row)
    if ctgan_cls is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ct, ct_seconds = fit_ctgan(ctgan_cls, train, steps, seed)
        row = scores(model, ct.sample(len(train)), train, test, seed)
        row.update(
            seconds=ct_seconds,
            ms_per_step=1000 * _ctgan_train_seconds(ctgan_cls, train, ct_seconds) / steps,
            steps=steps,
        )
        per.setdefault("ctgan (same steps)", []).append(row)
        equal = max(1, round(steps * seconds / ct_seconds))
        ct, t_equal = fit_ctgan(ctgan_cls, train, equal, seed)
        row = scores(model, ct.sample(len(train)), train, test, seed)
        row.update(seconds=t_equal, steps=equal)
        per.setdefault("ctgan (same wall time)", []).append(row)
        from ctgan import TVAE  # the package's TVAE beside TabularVAE, same steps

        ct, ct_seconds = fit_ctgan(TVAE, train, steps, seed)
        row = scores(tvae, ct.sample(len(train)), train, test, seed)
        row.update(seconds=ct_seconds, steps=steps)
        per.setdefault("ctgan TVAE (same steps)", []).append(row)


def _ctgan_train_seconds(ctgan_cls, train: pd.DataFrame, total: float) -> float:
    """ctgan's fit time minus its preprocessing (the data transformer fit + transform)."""
    from ctgan.data_transformer import DataTransformer

    start = time.perf_counter()
    transformer = DataTransformer()
    transformer.fit(train, ["target"])
    transformer.transform(train)
    return max(total - (time.perf_counter() - start), 1e-9)


def _table(summary: dict[str, Any]) -> str:
    keys = ["lr_acc", "rf_acc", "lr_f1", "rf_f1", "shape", "pairs", "dcr_synth", "dcr_holdout"]
    rows = []
    for name, per in summary.items():
        for method, vals in per.items():
            if method == "gankit conditioning":
                continue
            cells = [f"{vals[k][0]:.3f} ± {vals[k][1]:.3f}" if k in vals else "" for k in keys]
            secs = f"{vals['seconds'][0]:.1f}" if "seconds" in vals else ""
            step = f"{vals['ms_per_step'][0]:.1f}" if "ms_per_step" in vals else ""
            rows.append([name, method, *cells, secs, step])
    table = format_table(["dataset", "method", *keys, "fit s", "ms/step"], rows)
    cond = [
        [
            name,
            key[6:],
            f"{v[0]:.3f} ± {v[1]:.3f}",
            f"{per[method]['accept' + key[5:]][0]:.3f}",
        ]
        for name, per in summary.items()
        for method in per
        if method == "gankit conditioning"
        for key, v in per[method].items()
        if key.startswith("agree_")
    ]
    if not cond:
        return table
    headers = ["dataset", "class", "agreement (RF on real)", "acceptance"]
    return table + "\n\nconditioning (class_column='target'):\n" + format_table(headers, cond)
