"""Regression tests for the training failures an outside attack found (issue 11, items 1-5)."""

import errno
import subprocess
import sys

import pytest

from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.engine.runs import build_trainer
from gankit.errors import ConfigError, TrainingError

from ..conftest import TINY_TOY


def test_each_rollback_lowers_the_rates_further_then_stops(tmp_path, toy_config):
    """A run that diverges again after every rollback: 0.5, 0.25, 0.125 of the base rates,
    then one message naming the last good checkpoint (item 1: it used to loop forever)."""
    cfg = toy_config("train.steps=40", "train.on_divergence=rollback", "train.max_rollbacks=3")
    trainer = build_trainer(cfg, tmp_path / "rb")
    original, seen = trainer.run_step, []

    def always_diverges_after_step_12():
        stats = original()
        if trainer.step + 1 > 12:
            seen.append((trainer.rollbacks, trainer.rates.current("d")))
            stats["loss_d"] = float("nan")
        return stats

    trainer.run_step = always_diverges_after_step_12
    with pytest.raises(TrainingError, match=r"after 3 rollback\(s\).*checkpoint \(step 10\)"):
        trainer.fit()
    lrs = [lr for rollbacks, lr in seen]
    base = cfg.train.lr_d
    assert lrs == pytest.approx([base, base * 0.5, base * 0.25, base * 0.125])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_an_exploded_learning_rate_is_stopped_within_a_bounded_number_of_steps(
    tmp_path, toy_config, optimizer
):
    """lr 10 used to train 150 steps to the end without a word (item 2)."""
    cfg = toy_config(
        "train.steps=100000", "train.lr_d=10", "train.lr_g=10", f"train.optimizer={optimizer}"
    )
    trainer = build_trainer(cfg, tmp_path / optimizer)
    with pytest.raises(TrainingError, match=r"game collapsed|became nan|became inf"):
        trainer.fit()
    assert trainer.step <= 2 * cfg.train.collapse_patience


def test_a_healthy_run_is_not_stopped(tmp_path, toy_config):
    run = train(toy_config("train.steps=300"), tmp_path / "ok")
    assert run.step == 300


@pytest.mark.parametrize(
    "override",
    [
        "train.lr_d=.inf",
        "train.momentum=.nan",
        "train.lr_g=-.inf",
        "objective.r1=.nan",
        "data.std=.inf",
        "train.betas=[0.5, .nan]",
        "train.momentum=1.5",
    ],
)
def test_config_refuses_non_finite_and_out_of_range_numbers(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_config(None, [*TINY_TOY, override])


def test_resume_survives_a_torn_last_line_in_metrics(tmp_path, toy_config):
    run = train(toy_config("train.steps=10"), tmp_path / "torn")
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 11, "loss_d": 0.69')  # a write cut by a kill or a full disk
    resumed = resume(run.path, ["train.steps=20"])
    assert [h["step"] for h in resumed.history] == [5, 10, 15, 20]


def test_disk_full_while_checkpointing_is_one_line_naming_the_last_checkpoint(
    tmp_path, toy_config, monkeypatch
):
    import gankit.engine.trainer as trainer_module

    real_save, calls = trainer_module.save_state, []

    def full_disk_on_second_save(run_dir, state):
        calls.append(state["step"])
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(run_dir, state)

    monkeypatch.setattr(trainer_module, "save_state", full_disk_on_second_save)
    with pytest.raises(TrainingError) as info:
        train(toy_config("train.steps=20"), tmp_path / "full")
    message = str(info.value)
    assert "\n" not in message and "disk is full" in message and "(step 10) is intact" in message
    assert load_state(tmp_path / "full")["step"] == 10


def test_disk_full_from_the_cli_is_one_error_line(tmp_path):
    """The CLI turns the TrainingError into one `gankit: error:` line and exit code 2."""
    script = (
        "import errno, sys\n"
        "import gankit.engine.trainer as t\n"
        "real = t.save_state\n"
        "def save(d, s):\n"
        "    if s['step'] > 10: raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    return real(d, s)\n"
        "t.save_state = save\n"
        "from gankit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    overrides = [a for item in [*TINY_TOY, "train.steps=20"] for a in ("--set", item)]
    (tmp_path / "empty.yaml").write_text("{}\n")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "train",
            str(tmp_path / "empty.yaml"),
            "--out",
            str(tmp_path / "run"),
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gankit: error: could not write the checkpoint")


def test_temp_files_left_by_a_kill_are_cleaned_on_the_next_start(tmp_path, toy_config):
    run = train(toy_config("train.steps=10"), tmp_path / "tmp")
    stale = [run.path / ".model.json.abc123.tmp", run.path / ".state.pt.x.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    resume(run.path, ["train.steps=12"])
    assert not any(path.exists() for path in stale)


@pytest.mark.parametrize(
    "override",
    [
        "model.latent_dim=1000000000",
        "model.g_width=10000000",
        "train.batch_size=100000000",
        "model.pack=1000",
    ],
)
def test_config_refuses_sizes_that_would_allocate_gigabytes(override):
    with pytest.raises(ConfigError, match="too large"):
        load_config(None, [*TINY_TOY, override])


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("TabularGAN", {"lr": float("inf")}),
        ("TabularGAN", {"gp_weight": float("nan")}),
        ("TabularGAN", {"hidden": (10**7,)}),
        ("GANImputer", {"lr": float("inf")}),
        ("GANImputer", {"alpha": float("nan")}),
        ("GANImputer", {"hidden": 10**8}),
        ("GANImputer", {"ridge": float("inf")}),
    ],
)
def test_estimators_refuse_non_finite_and_huge_parameters(estimator, params):
    import numpy as np
    import pandas as pd

    import gankit.tabular as tabular

    name = next(iter(params))
    with pytest.raises(ConfigError, match=name):
        if estimator == "TabularGAN":
            tabular.TabularGAN(**params).fit(pd.DataFrame({"x": np.arange(40.0)}))
        else:
            tabular.GANImputer(**params).fit(np.random.default_rng(0).random((30, 3)))
