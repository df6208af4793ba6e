"""`gankit bench privacy`: utility and privacy attacks of TabularGAN against its ε.

Protocol (as `gankit bench synth`): scikit-learn's breast_cancer and wine with `target` as a
string discrete column; per seed a 70/30 stratified split; each synthesizer is fitted on the
70 % and samples as many rows. Synthesizers: TabularGAN (no DP, ε = ∞), TabularGAN with
DP-SGD on the critic at ε ∈ {10, 3, 1} (δ = 1e-5, C = 1; column ranges and the category set
declared public, as a user who publishes the schema would), and ctgan with the same steps
when the package is installed.

Scores: TSTR accuracy of logistic regression and a random forest on the real 30 %, column
shapes and pair correlations against the training table (`bench.synth`); privacy
(`gankit.tabular.privacy`): share of synthetic rows closer to train than to the holdout (train
subsampled to the holdout's size; 0.5 = no sign), exact-copy rate, the DOMIAS-style
membership-inference AUC (0.5 = no leak) and the attribute-inference risk of `target` from four
quasi-identifiers (member minus non-member 1-NN accuracy).
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import torch
from sklearn.model_selection import train_test_split

from gankit.bench.common import format_table, mean_se
from gankit.bench.synth import _ctgan, fit_ctgan, load_table, utility
from gankit.tabular.fidelity import column_shape_score, correlation_score
from gankit.tabular.privacy import attribute_inference, closest_records, membership_inference
from gankit.tabular.synthesizer import TabularGAN

EPSILONS = (10.0, 3.0, 1.0)
# 300 steps, half of `bench synth`'s 600: what the shared 2-vCPU machine allowed in the time
# (per-row gradients make a DP step ~1.5-2x a plain one); the ε = ∞ row has the same steps
STEPS = 300
DELTA = 1e-5
QUASI = {
    "breast": ["mean radius", "mean texture", "mean perimeter", "mean smoothness"],
    "wine": ["alcohol", "malic_acid", "ash", "alcalinity_of_ash"],
}
KEYS = ["lr_acc", "rf_acc", "shape", "pairs", "closer", "copies", "mia_auc", "aia_risk", "eps"]


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Every synthesizer on both tables and every seed; means ± s.e. of each score."""
    n_seeds = seeds or (1 if quick else 3)
    steps = 30 if quick else STEPS
    ctgan_cls = None if quick else _ctgan()
    notes = [] if ctgan_cls else ["ctgan rows skipped: the `ctgan` package is absent (or quick)"]
    torch.set_num_threads(1)
    frames = {name: load_table(name) for name in ("wine", "breast")}  # the cheaper first
    per: dict[str, dict[str, list]] = {name: {} for name in frames}
    for seed in range(n_seeds):  # seed-major: every finished seed covers both tables
        for name, frame in frames.items():
            train, test = train_test_split(
                frame, test_size=0.3, stratify=frame["target"], random_state=seed
            )
            train, test = train.reset_index(drop=True), test.reset_index(drop=True)
            _run_seed(per[name], name, train, test, seed, steps, ctgan_cls)
            rows = {method: values[-1] for method, values in per[name].items()}
            print(json.dumps({"dataset": name, "seed": seed, "rows": rows}), file=sys.stderr)
    summary = {
        name: {
            method: {k: mean_se([r[k] for r in rows]) for k in rows[0]}
            for method, rows in methods.items()
        }
        for name, methods in per.items()
    }
    return {
        "steps": steps,
        "seeds": n_seeds,
        "epsilons": list(EPSILONS),
        "delta": DELTA,
        "summary": summary,
        "notes": notes,
        "table": _table(summary),
    }


def _run_seed(per, name, train, test, seed, steps, ctgan_cls) -> None:
    base = TabularGAN(n_steps=steps, random_state=seed)
    model = base.fit(train, ["target"])
    per.setdefault("gankit (ε = ∞)", []).append(_scores(name, model, model, train, test, seed))
    for eps in EPSILONS:
        dp = {"epsilon": eps, "delta": DELTA, "public": ["ranges", "categories"]}
        private = TabularGAN(n_steps=steps, random_state=seed, dp=dp).fit(train, ["target"])
        row = _scores(name, private, model, train, test, seed)
        row["eps"] = private.dp_["epsilon"]
        per.setdefault(f"gankit DP (ε = {eps:g})", []).append(row)
    if ctgan_cls is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ct, seconds = fit_ctgan(ctgan_cls, train, steps, seed)
            synth = ct.sample(len(train))
        per.setdefault("ctgan (same steps)", []).append(
            _scored(name, synth, model, train, test, seed, seconds)
        )


def _scores(name, fitted, reference, train, test, seed) -> dict[str, float]:
    synth = fitted.sample(len(train), seed=seed)
    return _scored(name, synth, reference, train, test, seed, fitted.fit_seconds_)


def _scored(name, synth, reference, train, test, seed, seconds) -> dict[str, float]:
    """Utility, fidelity (against `reference`'s schema, the non-DP model's) and attacks."""
    row = utility(synth, test, seed)
    row["shape"] = column_shape_score(train, synth, reference.schema_)
    row["pairs"] = correlation_score(train, synth, reference.schema_)
    near = closest_records(synth, train, test, ["target"], seed)
    row["closer"] = near["share_closer_to_train"]
    row["copies"] = near["exact_copy_rate"]
    row["mia_auc"] = membership_inference(synth, train, test, ["target"], seed)["auc"]
    aia = attribute_inference(synth, train, test, "target", QUASI[name], ["target"])
    row["aia_risk"] = aia["risk"]
    row["seconds"] = seconds
    return row


def _table(summary: dict[str, Any]) -> str:
    rows = []
    for name, per in summary.items():
        for method, vals in per.items():
            cells = [f"{vals[k][0]:.3f} ± {vals[k][1]:.3f}" if k in vals else "" for k in KEYS]
            secs = f"{vals['seconds'][0]:.0f}" if "seconds" in vals else ""
            rows.append([name, method, *cells, secs])
    return format_table(["dataset", "method", *KEYS, "fit s"], rows)
