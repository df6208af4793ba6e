"""gankit tune / gankit.tune: search spaces, metrics, pruning, outputs, workers, storages.

The PostgreSQL test starts a throwaway server (initdb into a temporary directory, a free port on
127.0.0.1) and runs two `gankit tune` processes on one study, killing one in the middle of a
trial. Without the server binaries it skips with how to install them; with CI=1 it fails.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("optuna")

from gankit.cli import main
from gankit.config import load_config
from gankit.errors import ConfigError
from gankit.tune import (
    METRICS,
    ReportCallback,
    check_metric,
    open_storage,
    parse_space,
    tune,
    tune_estimator,
)

ROOT = Path(__file__).resolve().parents[1]
RING = str(ROOT / "configs" / "ring-gan.yaml")
# a tiny ring: a trial is ~50 steps of 16-unit MLPs
TINY = [
    "train.steps=50",
    "train.batch_size=64",
    "model.latent_dim=4",
    "model.g_width=16",
    "model.d_width=16",
    "data.n_samples=1024",
    "train.log_every=25",
    "train.checkpoint_every=50",
    "train.sample_every=50",
]
SPACE = {
    "train.lr_d": {"log_uniform": [1e-4, 1e-2]},
    "train.ema": {"uniform": [0.0, 0.99]},
    "objective.loss": ["hinge", "non-saturating"],
}


def sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def write_space(path: Path, space: dict) -> str:
    path.write_text(yaml.safe_dump(space))
    return str(path)


# --- the space and the metric ---------------------------------------------------------------
def test_space_forms_and_config_validation(tmp_path):
    params = parse_space(
        {
            "train.lr_d": {"log_uniform": ["1e-5", 1e-2]},
            "model.g_width": {"int": [32, 256]},
            "train.betas": [[0.5, 0.999], [0.0, 0.9]],
        }
    )
    assert [p.kind for p in params] == ["log_uniform", "int", "choice"]
    assert params[0].low == 1e-5 and params[0].grid_values()[1] == pytest.approx(10**-3.5)
    assert params[2].decode(params[2]._encoded()[1]) == [0.0, 0.9]  # lists travel as JSON

    with pytest.raises(ConfigError, match=r"train\.lr_dd.*did you mean 'lr_d'"):
        tune(RING, {"train.lr_dd": {"uniform": [0.1, 0.2]}}, n_trials=1, metric="modes")
    with pytest.raises(ConfigError, match=r"train\.ema.*must be in \[0, 1\)"):
        tune(RING, {"train.ema": {"uniform": [0.0, 1.0]}}, n_trials=1, metric="modes")
    with pytest.raises(ConfigError, match=r"model\.g_width.*expected int"):
        tune(RING, {"model.g_width": {"uniform": [8, 16]}}, n_trials=1, metric="modes")
    with pytest.raises(ConfigError, match=r"objective\.loss.*choose one of"):
        tune(RING, {"objective.loss": ["hinge", "hinj"]}, n_trials=1, metric="modes")
    with pytest.raises(ConfigError, match=r"exactly one of.*did you mean 'log_uniform'"):
        parse_space({"train.lr_d": {"loguniform": [1e-5, 1e-2]}})
    with pytest.raises(ConfigError, match="low < high"):
        parse_space({"train.lr_d": {"uniform": [0.2, 0.1]}})
    with pytest.raises(ConfigError, match="no such search-space file"):
        parse_space(tmp_path / "missing.yaml")


def test_metric_names_are_checked_against_the_data():
    with pytest.raises(ConfigError, match=r"unknown metric 'mode'.*modes, hq_percent"):
        check_metric("mode", "ring")
    with pytest.raises(ConfigError, match=r"scores digits runs.*'ring'.*choose one of modes"):
        check_metric("digits_fd", "ring")
    assert check_metric("digits_fd", "digits").direction == "minimize"
    assert {m for m, s in METRICS.items() if "digits" in s.data} == {
        "digits_fd",
        "precision",
        "recall",
    }


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    space = write_space(tmp_path / "space.yaml", SPACE)
    code = main(["tune", RING, "--space", space, "--trials", "2", "--metric", "fid"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("gankit: error: unknown metric")


def test_tune_help_imports_neither_torch_nor_optuna():
    code = (
        "import sys\nfrom gankit.cli import main\ntry:\n    main(['tune', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'optuna', 'sqlalchemy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--space" in done.stdout and done.stdout.strip().endswith("[]"), done.stderr


# --- a study on the ring ------------------------------------------------------------------------
def test_tune_ring_writes_trials_best_recipe_and_summary(tmp_path, capsys):
    space = write_space(tmp_path / "space.yaml", SPACE)
    out = tmp_path / "out"
    argv = ["tune", RING, "--space", space, "--trials", "3", "--sampler", "tpe"]
    argv += ["--metric", "modes_hq", "--out", str(out), "--prune-every", "25", *sets(TINY)]
    assert main(argv) == 0
    assert "best modes_hq" in capsys.readouterr().out
    result = json.loads((out / "tune.json").read_text())
    assert len(result["trials"]) == 3 and result["metric"] == "modes_hq"
    assert result["command"].startswith("gankit tune ")
    for t in result["trials"]:
        run = Path(t["run_dir"])
        assert run.name == f"trial-{t['number']:04d}" and (run / "config.yaml").is_file()
        if t["state"] == "complete":
            assert (run / "metrics.jsonl").is_file() and (run / "model.safetensors").is_file()
            assert 0 <= t["modes"] <= 8 and t["value"] == pytest.approx(t["modes_hq"])
    assert (out / "study.db").is_file() and (out / "history.png").is_file()
    assert "data:image/png;base64," in (out / "summary.html").read_text()
    best = load_config(out / "best.yaml")  # a recipe `gankit train` reads
    bt = result["best"]
    assert best.train.lr_d == pytest.approx(bt["params"]["train.lr_d"])
    assert best.objective.loss == bt["params"]["objective.loss"]
    assert best.train.steps == 50 and best.model.g_width == 16  # the --set overrides stay

    # the same study continues in the same database: 2 more trials, numbers go on
    result2 = tune(RING, space, n_trials=5, metric="modes_hq", out=out, overrides=TINY)
    assert [t.number for t in result2.study.get_trials()] == [0, 1, 2, 3, 4]


def test_grid_sampler_visits_each_point_once(tmp_path):
    space = {
        "objective.loss": ["hinge", "non-saturating"],
        "train.lr_d": {"uniform": [1e-3, 2e-3], "grid": [1e-3]},
    }
    result = tune(
        RING,
        space,
        n_trials=10,  # capped at the grid's 2 points
        metric="hq_percent",
        sampler="grid",
        out=tmp_path / "grid",
        overrides=TINY,
        prune_every=0,
    )
    seen = sorted(tuple(sorted(t.params.items())) for t in result.study.get_trials())
    assert len(seen) == 2 and len(set(seen)) == 2


def test_pruning_reports_intermediate_values_and_stops_the_run(tmp_path, toy_config):
    import optuna

    from gankit.engine.runs import build_trainer

    cfg = toy_config("train.steps=40")
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(1))
    study.add_trial(
        optuna.create_trial(value=100.0, intermediate_values={10: 100.0, 20: 100.0, 30: 100.0})
    )

    def objective(trial):
        report = ReportCallback(trial, cfg, "modes", 10)
        trainer = build_trainer(cfg, tmp_path / "run", callbacks=[report])
        trainer.fit()
        return 0.0

    study.optimize(objective, n_trials=1)
    pruned = study.trials[-1]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert list(pruned.intermediate_values) == [10]  # stopped at the first report
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] <= 10


def test_two_workers_on_sqlite_record_every_trial_once(tmp_path):
    out = tmp_path / "w"
    result = tune(
        RING,
        SPACE,
        n_trials=4,
        metric="modes",
        sampler="random",
        workers=2,
        out=out,
        overrides=TINY,
        prune_every=0,
    )
    trials = result.study.get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials)
    dirs = {t.user_attrs["run_dir"] for t in trials}
    assert len(dirs) == 4 and all(Path(d).is_dir() for d in dirs)
    importance = json.loads((out / "tune.json").read_text())["importance"]
    assert set(importance) == set(SPACE) and (out / "importance.png").is_file()


# --- PostgreSQL ---------------------------------------------------------------------------------
INSTALL = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install them with "
    "`sudo apt-get install -y postgresql` (Debian/Ubuntu) to run this test"
)


def _pg_bindir() -> Path | None:
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(found).parent
    which = shutil.which("initdb")
    return Path(which).resolve().parent if which else None


def _missing(reason: str):
    if os.environ.get("CI") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server; yields the URL of an empty database."""
    bindir = _pg_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        _missing(INSTALL)
    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        _missing("psycopg is missing: pip install 'gankit[hpo]' (or 'psycopg[binary]')")
    base = Path(tempfile.mkdtemp(prefix="gk-pg-"))  # short: unix socket paths are limited
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: the server runs as `postgres`
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and no `postgres` user: " + INSTALL)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run = lambda *cmd: subprocess.run([*cmd], check=True, capture_output=True, timeout=60)  # noqa: E731
    try:
        run(*as_user, bindir / "initdb", "-D", data, "-U", "gankit", "--auth=trust", "--no-sync")
        run(*as_user, bindir / "pg_ctl", "-D", data, "-o", options, "-l", base / "log", "-w",
            "start")  # fmt: skip
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "gankit", "study")
        yield f"postgresql://gankit@127.0.0.1:{port}/study"
    finally:
        with contextlib.suppress(Exception):
            run(*as_user, bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_two_workers_one_study_survive_a_kill(postgres, tmp_path):
    import optuna

    space = write_space(tmp_path / "space.yaml", SPACE)
    steps = ["train.steps=100", *TINY[1:]]
    cmd = [sys.executable, "-m", "gankit.cli", "tune", RING, "--space", space, "--trials", "5"]
    cmd += ["--sampler", "random", "--metric", "modes", "--storage", postgres, "--study", "pg"]
    cmd += ["--out", str(tmp_path / "out"), "--heartbeat", "1", "--prune-every", "0"]
    cmd += sets(steps)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {p.pid: p for p in (subprocess.Popen(cmd, env=env) for _ in range(2))}
    storage = open_storage(postgres, heartbeat=1)
    victim = None
    try:
        deadline = time.monotonic() + 120  # generous: a loaded machine starts workers slowly
        while victim is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                trials = optuna.load_study(study_name="pg", storage=storage).get_trials()
            except KeyError:  # not created yet
                continue
            done = sum(t.state.name == "COMPLETE" for t in trials)
            for t in trials:
                pid = int(t.user_attrs.get("worker", ":0").rsplit(":", 1)[1])
                if done >= 1 and t.state.name == "RUNNING" and pid in procs:
                    os.kill(pid, signal.SIGKILL)  # mid-trial
                    victim = (t.number, pid)
                    break
        assert victim is not None, "no trial was seen running"
        procs.pop(victim[1]).wait(timeout=10)
        (survivor,) = procs.values()
        assert survivor.wait(timeout=60) == 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    trials = optuna.load_study(study_name="pg", storage=storage).get_trials()
    by_number = {t.number: t for t in trials}
    assert sorted(by_number) == list(range(len(trials)))  # every trial recorded once
    killed = by_number[victim[0]]
    assert killed.state.name == "FAIL"  # failed by the survivor once its heartbeat was stale
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == victim[0]]
    assert retry.state.name == "COMPLETE" and retry.params == killed.params
    counted = [t for t in trials if t.number != victim[0]]
    assert 5 <= len(counted) <= 6  # two workers may start their last trials together
    assert all(t.state.name == "COMPLETE" for t in counted)
    assert len({t.user_attrs["run_dir"] for t in trials}) == len(trials)


# --- the table estimators -----------------------------------------------------------------------
def _iris_with_holes(seed: int = 0):
    from sklearn.datasets import load_iris

    x = load_iris().data.astype(float)
    holed = x.copy()
    holed[np.random.default_rng(seed).random(x.shape) < 0.15] = np.nan
    return x, holed


def test_tune_estimator_imputer_rmse_on_sqlite(tmp_path):
    from gankit.tabular import GANImputer

    _, holed = _iris_with_holes()
    url = f"sqlite:///{tmp_path / 'imp.db'}"
    space = {"alpha": {"log_uniform": [1.0, 100.0]}, "hint_rate": {"uniform": [0.5, 0.95]}}
    fixed = {"n_steps": 30, "patience": 20, "n_draws": 2, "ridge": 1e-2, "n_components": 1}
    result = tune_estimator(
        GANImputer, holed, space, "rmse", n_trials=3, storage=url, params=fixed, seed=0
    )
    assert result.scoring == "rmse" and 0 < result.best_value < 0.5
    assert set(result.best_params) == {"alpha", "hint_rate"}
    assert len(result.study.get_trials()) == 3 and (tmp_path / "imp.db").is_file()
    with pytest.raises(ConfigError, match=r"no parameter 'alfa'.*did you mean 'alpha'"):
        tune_estimator(GANImputer, holed, {"alfa": [1.0, 2.0]}, "rmse", n_trials=1)
    with pytest.raises(ConfigError, match=r"unknown scoring 'utility' for GANImputer.*rmse"):
        tune_estimator(GANImputer, holed, space, "utility", n_trials=1)


def test_tune_estimator_tabular_gan_fidelity_and_utility():
    import pandas as pd

    from gankit.tabular import TabularGAN

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=120), "y": rng.normal(size=120)})
    df["label"] = np.where(df.x + 0.3 * rng.normal(size=120) > 0, "a", "b")
    fixed = {"n_steps": 10, "hidden": (16, 16), "z_dim": 8, "batch_size": 40}
    space = {"lr": {"log_uniform": [1e-4, 1e-3]}, "pac": [1, 2]}
    fid = tune_estimator(
        TabularGAN, df, space, n_trials=2, params=fixed, fit_params={"discrete_columns": ["label"]}
    )
    assert fid.scoring == "fidelity" and 0 < fid.best_value <= 1
    util = tune_estimator(
        TabularGAN, df, space, "utility", n_trials=1, params=fixed, target="label"
    )
    assert 0 <= util.best_value <= 1


def test_gan_imputer_still_works_in_grid_search_cv():
    from sklearn.model_selection import GridSearchCV

    from gankit.tabular import GANImputer

    full, holed = _iris_with_holes(1)
    hidden = np.isnan(holed)

    def scorer(est, X, y):  # minus the RMSE of the filled entries (y: the complete table)
        miss = np.isnan(X)
        return -float(np.sqrt(np.mean((est.transform(X)[miss] - y[miss]) ** 2)))

    search = GridSearchCV(
        GANImputer(n_steps=20, patience=10, n_draws=2, ridge=1e-2, n_components=1),
        {"alpha": [1.0, 10.0]},
        scoring=scorer,
        cv=2,
    )
    search.fit(holed, full)
    assert search.best_params_["alpha"] in (1.0, 10.0)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert not np.isnan(search.best_estimator_.transform(holed)[hidden]).any()


def test_shipped_spaces_fit_their_recipes():
    from gankit.tune import check_space

    for config, space in [("ring-gan", "ring"), ("digits-dcgan", "digits")]:
        path = ROOT / "configs" / "spaces" / f"{space}.yaml"
        check_space(ROOT / "configs" / f"{config}.yaml", parse_space(path), (), str(path))


def test_digits_metrics_score_a_tiny_run(tmp_path):
    from .conftest import TINY_DIGITS

    space = {"train.lr_g": {"log_uniform": [1e-4, 1e-3]}}
    result = tune(
        ROOT / "configs" / "digits-dcgan.yaml",
        space,
        n_trials=1,
        metric="digits_fd",
        out=tmp_path / "d",
        overrides=[*TINY_DIGITS, "train.ema=0"],
        prune_every=3,
    )
    (trial,) = result.study.get_trials()
    assert trial.value == pytest.approx(trial.user_attrs["digits_fd"]) and trial.value > 0
    assert 0 <= trial.user_attrs["precision"] <= 1 and 0 <= trial.user_attrs["recall"] <= 1


def test_unreachable_storage_and_reused_out_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot open the study storage postgresql") as err:
        open_storage("postgresql://gankit:secret@127.0.0.1:1/none", heartbeat=1)
    assert "secret" not in str(err.value) and "gankit:***@127.0.0.1:1" in str(err.value)
    out = tmp_path / "o"
    (out / "trial-0000").mkdir(parents=True)  # left by a study in another storage
    (out / "trial-0000" / "state.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="trial-0000 already holds a run of another study"):
        tune(RING, SPACE, n_trials=1, metric="modes", out=out, overrides=TINY, prune_every=0)
