"""What a study leaves in OUT: best.yaml, tune.json, history.png, importance.png, summary.html."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import platform
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gankit.errors import (
    TrainingError,
)
from gankit.tune.metrics import METRICS
from gankit.tune.space import Param, trial_config
from gankit.tune.storage import masked

if TYPE_CHECKING:
    from gankit.tune.study import TuneSettings


@dataclass
class TuneResult:
    """What `tune` leaves: the study, the best trial's value, parameters and recipe."""

    study: Any
    best_value: float
    best_params: dict[str, Any]
    best_config: Path
    summary: Path
    out: Path
    seconds: float


def write_outputs(
    study: Any, s: TuneSettings, space: list[Param], seconds: float, command: str | None
) -> TuneResult:
    """best.yaml, tune.json, history.png, importance.png and summary.html in OUT."""
    from optuna.trial import TrialState

    from gankit.config import to_dict
    from gankit.modeldir import atomic_write_bytes, atomic_write_json

    out = Path(s.out)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        counts = {st.name.lower(): sum(t.state == st for t in trials) for st in TrialState}
        errors = [t.user_attrs["error"] for t in trials if "error" in t.user_attrs]
        hint = f"; first error: {errors[0]}" if errors else ""
        raise TrainingError(
            f"no trial of study {s.study!r} completed ({counts}){hint}; "
            "widen the space, lengthen train.steps or prune less (--prune-every 0)"
        )
    best = study.best_trial
    by_key = {p.key: p for p in space}
    best_params = {k: by_key[k].decode(v) if k in by_key else v for k, v in best.params.items()}
    best_out = f"runs/{s.study}-best"
    cfg = trial_config(s.config, s.overrides, best_params, out=best_out)
    header = (
        f"# Best config of study {s.study!r} ({s.sampler}, {len(trials)} trials): trial "
        f"{best.number}, {s.metric} = {best.value:.6g} ({s.direction}).\n"
        f"# From {s.config}"
        + "".join(f" --set {o}" for o in s.overrides)
        + f" with {json.dumps(best_params)}.\n# Train it: gankit train {out / 'best.yaml'}\n"
    )
    body = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    atomic_write_bytes(out / "best.yaml", (header + body).encode())
    rows = [_trial_row(t, by_key) for t in trials]
    pictures = _plots(study, trials, s, out)
    atomic_write_json(
        out / "tune.json",
        {
            "study": s.study,
            "storage": masked(s.storage),
            "config": s.config,
            "overrides": s.overrides,
            "space": s.space,
            "sampler": s.sampler,
            "metric": s.metric,
            "metric_protocol": METRICS[s.metric].protocol,
            "direction": s.direction,
            "n_trials": s.n_trials,
            "prune_every": s.prune_every,
            "best": {"trial": best.number, "value": best.value, "params": best_params},
            "importance": pictures.get("importance_values", {}),
            "trials": rows,
            "seconds": round(seconds, 3),
            "command": command,
            "environment": _environment(),
        },
    )
    summary = out / "summary.html"
    atomic_write_bytes(summary, _html(s, rows, best, best_params, pictures).encode())
    return TuneResult(study, best.value, best_params, out / "best.yaml", summary, out, seconds)


def _trial_row(t: Any, by_key: dict[str, Param]) -> dict[str, Any]:
    params = {k: by_key[k].decode(v) if k in by_key else v for k, v in t.params.items()}
    extra = {k: v for k, v in t.user_attrs.items() if k not in ("run_dir", "worker")}
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": t.value,
        "params": params,
        "run_dir": t.user_attrs.get("run_dir"),
        "worker": t.user_attrs.get("worker"),
        "retry_of": t.system_attrs.get("failed_trial"),
        "last_step": max(t.intermediate_values) if t.intermediate_values else None,
        **extra,
    }


def _plots(study: Any, trials: list, s: TuneSettings, out: Path) -> dict[str, Any]:
    """history.png (every trial's value and the best so far) and importance.png (fANOVA
    importance of each parameter; needs two or more complete trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    pictures: dict[str, Any] = {}
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [t.number for t in done]
    ys = [t.value for t in done]
    ax.scatter(xs, ys, s=14, label="complete trial")
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.scatter([t.number for t in pruned], last, s=14, marker="x", label="pruned (last)")
    best, running = [], None
    for y in ys:
        better = running is None or (y < running if s.direction == "minimize" else y > running)
        running = y if better else running
        best.append(running)
    ax.step(xs, best, where="post", color="C3", label="best so far")
    ax.set(xlabel="trial", ylabel=s.metric, title=f"{s.study}: optimisation history")
    ax.legend(fontsize=8)
    fig.tight_layout()
    pictures["history"] = _save(fig, out / "history.png")
    plt.close(fig)
    importance: dict[str, float] = {}
    if len(done) >= 4 and len({json.dumps(t.params, sort_keys=True) for t in done}) >= 2:
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate studies (a constant parameter)
            import optuna

            importance = dict(optuna.importance.get_param_importances(study))
    pictures["importance_values"] = importance
    if importance:
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(importance)))
        names = list(importance)[::-1]
        ax.barh(names, [importance[n] for n in names])
        ax.set(xlabel="importance (fANOVA, normalised)", title="parameter importance")
        fig.tight_layout()
        pictures["importance"] = _save(fig, out / "importance.png")
        plt.close(fig)
    return pictures


def _save(fig: Any, path: Path) -> str:
    from gankit.modeldir import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())
    return base64.b64encode(buf.getvalue()).decode()


def _html(s: TuneSettings, rows: list, best: Any, best_params: dict, pictures: dict) -> str:
    e = html.escape
    images = "".join(
        f'<img alt="{k}" src="data:image/png;base64,{pictures[k]}">'
        for k in ("history", "importance")
        if k in pictures
    )
    keys = list(s.space)
    head = "".join(f"<th>{e(k)}</th>" for k in ["trial", "state", s.metric, *keys, "run"])
    body = ""
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:.6g}"
        cells = [str(r["number"]), r["state"], value]
        cells += [json.dumps(r["params"].get(k)) for k in keys] + [str(r["run_dir"] or "")]
        body += "<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>\n"
    return (
        "<!doctype html><meta charset=utf-8>"
        f"<title>gankit tune: {e(s.study)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}img{max-width:48%}</style>"
        f"<h1>Study {e(s.study)}</h1><p>{e(s.config)}, {e(s.sampler)} sampler, metric "
        f"<b>{e(s.metric)}</b> ({e(s.direction)}; {e(METRICS[s.metric].protocol)}), "
        f"{len(rows)} trials.</p><p>Best: trial {best.number}, {e(s.metric)} = "
        f"{best.value:.6g}, {e(json.dumps(best_params))} — recipe <code>best.yaml</code>.</p>"
        f"{images}<table><tr>{head}</tr>\n{body}</table>"
    )


def _environment() -> dict[str, Any]:
    import numpy
    import optuna
    import torch

    from gankit import __version__

    return {
        "gankit": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
