"""The quality report of a table synthesizer: `gankit synth report MODEL --real data.csv`.

Scores (each in [0, 1], 1 = synthetic indistinguishable from real by that measure), with the
definitions SDMetrics documents for its quality report (implemented here from the definitions;
tests/tabular/test_quality.py checks them against SDMetrics on the same tables):

* **column shapes**: KS complement 1 - sup|F_real - F_synth| (numbers), TV complement
  1 - 1/2 sum|p_real - p_synth| over the categories (categories);
* **pair trends**: correlation similarity 1 - |rho_real - rho_synth| / 2 (Pearson, two numeric
  columns), contingency similarity 1 - 1/2 sum|P_real(a, b) - P_synth(a, b)| (any other pair;
  numbers binned into 10 equal-width bins of the real range, outer bins open);
* **detection**: the cross-validated ROC AUC of classifiers telling real from synthetic rows
  (0.5 = cannot tell); score = 1 - max(0, 2 AUC - 1) of the stronger classifier;
* **utility** (with a target column): train on synthetic, test on real (TSTR) against train on
  real, test on real (TRTR), on the same held-out real rows;
* **privacy**: distance to closest record, exact copies and, with a holdout, the attacks of
  `gankit.tabular.privacy.privacy_metrics` (membership and attribute inference);
* per-column plots (real vs synthetic), embedded as PNG.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gankit.errors import DataError
from gankit.tabular.transform import TableSchema

BINS = 10
FOLDS = 5


# ------------------------------------------------------------------------- column shapes
def ks_complement(real: pd.Series, synth: pd.Series) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic of two numeric columns."""
    from scipy.stats import ks_2samp

    a = pd.to_numeric(real, errors="coerce").dropna().to_numpy(float)
    b = pd.to_numeric(synth, errors="coerce").dropna().to_numpy(float)
    return float(1.0 - ks_2samp(a, b).statistic)


def tv_complement(real: pd.Series, synth: pd.Series) -> float:
    """1 - the total variation distance of two categorical columns' frequencies."""
    p = real.astype(str).value_counts(normalize=True)
    q = synth.astype(str).value_counts(normalize=True)
    idx = p.index.union(q.index)
    return float(
        1.0 - 0.5 * np.abs(p.reindex(idx, fill_value=0) - q.reindex(idx, fill_value=0)).sum()
    )


def column_shapes(real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema) -> list[dict]:
    """One score per modelled column."""
    out = []
    for col in schema.columns:
        numeric = col.kind != "categorical"
        score = (ks_complement if numeric else tv_complement)(real[col.name], synth[col.name])
        metric = "KSComplement" if numeric else "TVComplement"
        out.append({"column": col.name, "metric": metric, "score": score})
    return out


# --------------------------------------------------------------------------- pair trends
def correlation_similarity(real: pd.DataFrame, synth: pd.DataFrame) -> dict[str, float] | None:
    """1 - |rho_real - rho_synth| / 2 of the first two columns (Pearson); None if constant."""
    a, b = real.columns[:2]
    r = real[[a, b]].astype(float).dropna()
    s = synth[[a, b]].astype(float).dropna()
    if min(r[a].std(), r[b].std(), s[a].std(), s[b].std()) == 0 or len(r) < 2 or len(s) < 2:
        return None
    rho_r, rho_s = float(np.corrcoef(r[a], r[b])[0, 1]), float(np.corrcoef(s[a], s[b])[0, 1])
    return {"score": 1.0 - abs(rho_r - rho_s) / 2.0, "real": rho_r, "synthetic": rho_s}


def _binned(real: pd.Series, synth: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Bin numbers into `BINS` equal-width bins of the real range (outer bins open)."""
    edges = np.histogram_bin_edges(real.dropna().to_numpy(float), bins=BINS)
    edges[0], edges[-1] = -np.inf, np.inf
    return np.digitize(real.to_numpy(float), edges), np.digitize(synth.to_numpy(float), edges)


def contingency_similarity(
    real: pd.DataFrame, synth: pd.DataFrame, numeric: tuple[str, ...] = ()
) -> float:
    """1 - the total variation distance of the joint frequencies of the first two columns
    (columns named in `numeric` binned first)."""
    a, b = real.columns[:2]
    r, s = real[[a, b]].copy(), synth[[a, b]].copy()
    for name in (a, b):
        if name in numeric:
            r[name], s[name] = _binned(r[name], s[name])
        else:
            r[name], s[name] = r[name].astype(str), s[name].astype(str)
    p = r.groupby([a, b], dropna=False).size() / len(r)
    q = s.groupby([a, b], dropna=False).size() / len(s)
    idx = p.index.union(q.index)
    return float(
        1.0 - 0.5 * np.abs(p.reindex(idx, fill_value=0) - q.reindex(idx, fill_value=0)).sum()
    )


def pair_trends(real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema) -> list[dict]:
    """One score per pair of modelled columns."""
    numeric = tuple(c.name for c in schema.columns if c.kind != "categorical")
    out = []
    for a, b in combinations(schema.names, 2):
        if a in numeric and b in numeric:
            found = correlation_similarity(real[[a, b]], synth[[a, b]])
            entry = {"columns": [a, b], "metric": "CorrelationSimilarity"}
            entry.update(found or {"score": None, "note": "a constant column"})
        else:
            score = contingency_similarity(real[[a, b]], synth[[a, b]], numeric)
            entry = {"columns": [a, b], "metric": "ContingencySimilarity", "score": score}
        out.append(entry)
    return out


# ----------------------------------------------------------------------- detection, TSTR
def features(frames: list[pd.DataFrame], schema: TableSchema, names: list[str]) -> list[np.ndarray]:
    """Model inputs: numbers standardised by the first frame, categories one-hot."""
    first = frames[0]
    out: list[list[np.ndarray]] = [[] for _ in frames]
    for col in schema.columns:
        if col.name not in names:
            continue
        if col.kind == "categorical":
            cats = sorted({str(v) for f in frames for v in f[col.name]})
            for i, f in enumerate(frames):
                values = f[col.name].astype(str).to_numpy()
                out[i].append((values[:, None] == np.array(cats)[None, :]).astype(float))
        else:
            mean, std = first[col.name].astype(float).mean(), first[col.name].astype(float).std()
            for i, f in enumerate(frames):
                scaled = (f[col.name].astype(float).to_numpy() - mean) / (std or 1.0)
                out[i].append(scaled[:, None])
    return [np.concatenate(parts, 1) for parts in out]


def detection(
    real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema, seed: int = 0, trees: int = 100
) -> dict[str, Any]:
    """Cross-validated ROC AUC of logistic regression and a random forest telling real rows
    (label 0) from synthetic ones (1), on equally many of each."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    n = min(len(real), len(synth))
    r = real.sample(n, random_state=seed) if len(real) > n else real
    s = synth.sample(n, random_state=seed) if len(synth) > n else synth
    xr, xs = features([r, s], schema, schema.names)
    x, y = np.concatenate([xr, xs]), np.r_[np.zeros(len(xr)), np.ones(len(xs))]
    folds = StratifiedKFold(min(FOLDS, n), shuffle=True, random_state=seed)
    models = {
        "logistic_regression": LogisticRegression(max_iter=1000),
        "random_forest": RandomForestClassifier(trees, min_samples_leaf=2, random_state=seed),
    }
    auc = {
        k: float(cross_val_score(m, x, y, cv=folds, scoring="roc_auc").mean())
        for k, m in models.items()
    }
    best = max(auc.values())
    return {
        "roc_auc": auc,
        "score": 1.0 - max(0.0, 2 * best - 1),
        "rows_each": n,
        "folds": folds.n_splits,
    }


def utility(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    schema: TableSchema,
    target: str,
    holdout: pd.DataFrame | None = None,
    seed: int = 0,
    trees: int = 100,
) -> dict[str, Any]:
    """TSTR against TRTR: a random forest fitted on synthetic rows and one fitted on real rows,
    both tested on the same real rows (the holdout if given, else a held-out half of real)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    if target not in schema.names:
        raise DataError(
            f"target {target!r} is not a modelled column; expected one of {schema.names}"
        )
    if holdout is None:
        shuffled = real.sample(frac=1.0, random_state=seed)
        half = len(shuffled) // 2
        train, test, tested = shuffled.iloc[:half], shuffled.iloc[half:], "half of the real rows"
    else:
        train, test, tested = real, holdout, "the holdout rows"
    inputs = [n for n in schema.names if n != target]
    x_train, x_synth, x_test = features([train, synth, test], schema, inputs)
    classify = next(c for c in schema.columns if c.name == target).kind == "categorical"
    scores = {}
    for name, x, frame in (("trtr", x_train, train), ("tstr", x_synth, synth)):
        if classify:
            model = RandomForestClassifier(trees, random_state=seed)
            model.fit(x, frame[target].astype(str))
            pred = model.predict(x_test)
            truth = test[target].astype(str)
            scores[name] = {
                "accuracy": float(accuracy_score(truth, pred)),
                "macro_f1": float(f1_score(truth, pred, average="macro")),
            }
        else:
            model = RandomForestRegressor(trees, random_state=seed)
            model.fit(x, frame[target].astype(float))
            scores[name] = {
                "r2": float(r2_score(test[target].astype(float), model.predict(x_test)))
            }
    key = "macro_f1" if classify else "r2"
    ratio = scores["tstr"][key] / scores["trtr"][key] if scores["trtr"][key] > 0 else None
    return {
        "target": target,
        "task": "classification" if classify else "regression",
        "model": f"random forest, {trees} trees",
        "tested_on": tested,
        **scores,
        "tstr_over_trtr": ratio,
        "metric": key,
    }


# ------------------------------------------------------------------------------- privacy
def privacy_section(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    schema: TableSchema,
    holdout: pd.DataFrame | None = None,
    sensitive: tuple[str, ...] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """DCR and exact copies against `real` (the training rows); with a holdout, the attacks
    of `gankit.tabular.privacy.privacy_metrics` (when this gankit has them)."""
    from gankit.tabular import privacy

    records = privacy.NearestRecords(privacy.distance_space(schema, real))
    out: dict[str, Any] = {"dcr": records.report(privacy.distance_space(schema, synth), None)}
    attacks = getattr(privacy, "privacy_metrics", None)  # hook: the attacks of issue 16
    if holdout is not None and attacks is not None:
        discrete = [c.name for c in schema.columns if c.kind == "categorical"]
        names = schema.names
        out["attacks"] = attacks(
            synth[names], real[names], holdout[names], discrete, list(sensitive), seed=seed
        )
    elif holdout is None:
        out["attacks"] = "pass --holdout (real rows the model never saw) for the attacks"
    else:
        out["attacks"] = "gankit.tabular.privacy.privacy_metrics is not available"
    return out


# ----------------------------------------------------------------------------- the report
def quality_report(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    schema: TableSchema,
    target: str | None = None,
    holdout: pd.DataFrame | None = None,
    sensitive: tuple[str, ...] = (),
    seed: int = 0,
    trees: int = 100,
) -> dict[str, Any]:
    """Every section of the report as one JSON-ready dict (`trees`: size of the random
    forests of the detection and utility sections)."""
    missing = [n for n in schema.names if n not in real.columns]
    if missing:
        raise DataError(f"the real table lacks the model's columns {missing}")
    if target is not None and target not in schema.names:
        raise DataError(
            f"target {target!r} is not a modelled column; expected one of {schema.names}"
        )
    if holdout is not None and (lost := [n for n in schema.names if n not in holdout.columns]):
        raise DataError(f"the holdout table lacks the model's columns {lost}")
    real = real[schema.names].dropna().reset_index(drop=True)
    synth = synth[schema.names].reset_index(drop=True)
    if holdout is not None:
        holdout = holdout[schema.names].dropna().reset_index(drop=True)
    shapes = column_shapes(real, synth, schema)
    pairs = pair_trends(real, synth, schema)
    scored = [p["score"] for p in pairs if p["score"] is not None]
    shape_score = float(np.mean([s["score"] for s in shapes]))
    pair_score = float(np.mean(scored)) if scored else None
    report: dict[str, Any] = {
        "rows": {"real": len(real), "synthetic": len(synth)},
        "scores": {
            "column_shapes": shape_score,
            "pair_trends": pair_score,
            "overall": float(np.mean([shape_score] + ([pair_score] if scored else []))),
        },
        "column_shapes": shapes,
        "pair_trends": pairs,
        "detection": detection(real, synth, schema, seed, trees),
    }
    report["scores"]["detection"] = report["detection"]["score"]
    if target:
        report["utility"] = utility(real, synth, schema, target, holdout, seed, trees)
    report["privacy"] = privacy_section(real, synth, schema, holdout, sensitive, seed)
    return report


def report_model(
    model: str | Path,
    real: pd.DataFrame,
    n: int | None = None,
    seed: int = 0,
    **options: Any,
) -> tuple[dict[str, Any], pd.DataFrame, TableSchema]:
    """Load a saved synthesizer, draw `n` rows (default: as many as `real`) and report."""
    from gankit.errors import CheckpointError
    from gankit.modeldir import verify_model_dir
    from gankit.registry import kind

    spec = verify_model_dir(model)
    entry = kind(spec.get("kind"), model)
    if "synthesis" not in entry.tags:
        raise CheckpointError(f"{model}: a {entry.name!r} model is not a table synthesizer")
    synthesizer = entry.load(model)
    synth = synthesizer.sample(n or len(real), seed=seed)
    report = quality_report(real, synth, synthesizer.schema_, seed=seed, **options)
    report = {"model": str(model), "kind": entry.name, "dp": spec.get("dp"), **report}
    return report, synth, synthesizer.schema_


# ------------------------------------------------------------------------------- output
def column_plot(real: pd.Series, synth: pd.Series, numeric: bool) -> str:
    """A small real-vs-synthetic PNG of one column, base64-encoded."""
    from matplotlib.figure import Figure  # no pyplot: no global state, a faster import

    fig = Figure(figsize=(3.6, 2.4), dpi=80)
    ax = fig.subplots()
    if numeric:
        a, b = real.astype(float), synth.astype(float)
        edges = np.histogram_bin_edges(np.r_[a, b], bins=20)
        ax.hist(a, edges, density=True, alpha=0.55, label="real", color="#1f77b4")
        ax.hist(b, edges, density=True, alpha=0.55, label="synthetic", color="#ff7f0e")
    else:
        p = real.astype(str).value_counts(normalize=True)
        q = synth.astype(str).value_counts(normalize=True)
        cats = list(p.index.union(q.index))[:20]
        x = np.arange(len(cats))
        ax.bar(x - 0.2, p.reindex(cats, fill_value=0), 0.4, label="real", color="#1f77b4")
        ax.bar(x + 0.2, q.reindex(cats, fill_value=0), 0.4, label="synthetic", color="#ff7f0e")
        ax.set_xticks(x, cats, rotation=45, ha="right", fontsize=7)
    ax.set_title(str(real.name), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return html.escape("n/a" if value is None else str(value))


def _table(rows: list[dict], keys: list[str]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(
    report: dict[str, Any], real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema
) -> str:
    """A self-contained HTML page of the report (plots inline)."""
    scores = report["scores"]
    dp = report.get("dp") or {}
    parts = [
        "<!doctype html><meta charset='utf-8'><title>gankit quality report</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;"
        "padding:.2rem .5rem;text-align:left}img{margin:.3rem}</style>",
        f"<h1>Quality report: {html.escape(str(report.get('model', '')))}</h1>",
        f"<p>{report['rows']['real']} real rows, {report['rows']['synthetic']} synthetic rows; "
        f"differential privacy: {_fmt(dp.get('epsilon')) + ' ε' if dp else 'none'}</p>",
        "<h2>Scores</h2>",
        _table([{k: v for k, v in scores.items()}], list(scores)),
        "<h2>Column shapes</h2>",
        _table(report["column_shapes"], ["column", "metric", "score"]),
        "<h2>Pair trends</h2>",
        _table(
            [{**p, "columns": " × ".join(p["columns"])} for p in report["pair_trends"]],
            ["columns", "metric", "score", "real", "synthetic"],
        ),
        "<h2>Detection</h2>",
        f"<p>Cross-validated ROC AUC at telling real from synthetic rows (0.5 = cannot tell): "
        f"{_fmt(json.dumps(report['detection']['roc_auc']))}</p>",
    ]
    if "utility" in report:
        u = report["utility"]
        parts += [
            "<h2>Utility (train on synthetic, test on real)</h2>",
            f"<pre>{html.escape(json.dumps(u, indent=1))}</pre>",
        ]
    parts += [
        "<h2>Privacy</h2>",
        f"<pre>{html.escape(json.dumps(report['privacy'], indent=1, default=str))}</pre>",
        "<h2>Columns</h2><div>",
    ]
    for col in schema.columns:
        png = column_plot(real[col.name], synth[col.name], col.kind != "categorical")
        parts.append(f"<img alt='{html.escape(col.name)}' src='data:image/png;base64,{png}'>")
    parts.append("</div>")
    return "\n".join(parts)


def write_report(
    model: str | Path,
    real_csv: str | Path,
    out: str | Path,
    holdout_csv: str | Path | None = None,
    delimiter: str | None = None,
    n: int | None = None,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """`gankit synth report`: write OUT (HTML) and OUT with .json (the same numbers)."""
    from gankit.modeldir import atomic_write_bytes, atomic_write_json
    from gankit.tabular.files import read_csv

    real = read_csv(real_csv, delimiter)
    holdout = read_csv(holdout_csv, delimiter) if holdout_csv else None
    report, synth, schema = report_model(model, real, n, seed, holdout=holdout, **options)
    out = Path(out)
    used = real[schema.names].dropna()
    atomic_write_bytes(out, render_html(report, used, synth, schema).encode())
    atomic_write_json(out.with_suffix(".json"), report)
    return {"out": str(out), "json": str(out.with_suffix(".json")), **report["scores"]}
