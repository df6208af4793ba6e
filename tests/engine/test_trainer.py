import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import gankit
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.engine.runs import build_trainer
from gankit.errors import CheckpointError, ConfigError, TrainingError

from ..conftest import TINY_TOY


def test_train_writes_run_directory(tmp_path, digits_config):
    run = train(digits_config("train.ema=0.9"), tmp_path / "run")
    files = {p.name for p in run.path.iterdir()}
    assert {
        "model.safetensors",
        "model.json",
        "state.pt",
        "config.yaml",
        "metrics.jsonl",
        "loss_curve.png",
        "samples",
    } <= files
    assert sorted(p.name for p in (run.path / "samples").iterdir()) == [
        "step-00000003.png",
        "step-00000006.png",
    ]
    assert [h["step"] for h in run.history] == [2, 4, 6]
    spec = json.loads((run.path / "model.json").read_text())
    assert spec["kind"] == "image-generator" and spec["ema"] and spec["step"] == 6
    gen = gankit.load_generator(run.path)
    assert torch.equal(gen.sample(4, seed=1), gen.sample(4, seed=1))
    assert gen.sample(4, seed=1).shape == (4, 1, 8, 8)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(digits_config(), run.path)


def test_seeded_runs_are_identical(tmp_path, toy_config):
    a = train(toy_config(), tmp_path / "a")
    b = train(toy_config(), tmp_path / "b")
    wa, wb = load_file(a.path / "model.safetensors"), load_file(b.path / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_is_bit_identical(tmp_path, toy_config):
    full = train(toy_config("train.steps=20"), tmp_path / "full")
    part = train(toy_config("train.steps=10"), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=20"])
    assert resumed.step == 20
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("g", "d"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]


def test_kill_minus_nine_then_resume(tmp_path, toy_config):
    """A hard kill between checkpoints loses nothing already saved; resuming matches."""
    steps = 400
    settings = [*TINY_TOY, "train.checkpoint_every=50", f"train.steps={steps}"]
    overrides = [arg for item in settings for arg in ("--set", item)]
    (tmp_path / "empty.yaml").write_text("{}\n")
    reference = train(
        toy_config(f"train.steps={steps}", "train.checkpoint_every=50"), tmp_path / "ref"
    )
    run_dir = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gankit.cli",
            "train",
            str(tmp_path / "empty.yaml"),
            "--out",
            str(run_dir),
            *overrides,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (run_dir / "state.pt").exists():
        time.sleep(0.02)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_state(run_dir)  # the last complete checkpoint always loads
    assert 0 < state["step"] <= steps
    gankit.load_generator(run_dir)
    resumed = resume(run_dir)
    assert resumed.step == steps
    a, b = load_state(reference.path), load_state(run_dir)
    ga, gb = a["networks"]["g"], b["networks"]["g"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


def test_watchdog_stops_on_nan(tmp_path, toy_config):
    with pytest.raises(TrainingError, match="became nan at step 1; no checkpoint"):
        train(toy_config("train.lr_d=1e30", "train.lr_g=1e30"), tmp_path / "early")
    trainer = build_trainer(toy_config("train.steps=40"), tmp_path / "nan")
    poison_step(trainer, 14)
    with pytest.raises(
        TrainingError, match=r"loss_d became nan at step 14.*checkpoint \(step 10\)"
    ):
        trainer.fit()
    assert gankit.load_generator(tmp_path / "nan").spec["step"] == 10  # still loadable


def poison_step(trainer, at_step):
    """Make the loss non-finite once, at `at_step`, as a diverging run would."""
    original = trainer.run_step

    def poisoned():
        stats = original()
        if trainer.step + 1 == at_step and trainer.rollbacks == 0:
            stats["loss_d"] = float("nan")
        return stats

    trainer.run_step = poisoned


def test_watchdog_stops_when_discriminator_wins(tmp_path, toy_config):
    cfg = toy_config(
        "train.d_win_patience=3",
        "train.lr_g=1e-12",
        "train.d_steps=5",
        "train.lr_d=0.01",
        "train.steps=300",
    )
    with pytest.raises(TrainingError, match="discriminator separated every"):
        train(cfg, tmp_path / "dwin")


def test_rollback_lowers_learning_rate(tmp_path, toy_config):
    cfg = toy_config("train.steps=40", "train.on_divergence=rollback", "train.max_rollbacks=2")
    trainer = build_trainer(cfg, tmp_path / "rb")
    poison_step(trainer, 14)
    run = trainer.fit()
    assert run.step == 40 and trainer.rollbacks == 1
    assert trainer.rates.current("d") == pytest.approx(cfg.train.lr_d * 0.5)


def test_tampered_weights_are_refused(tmp_path, toy_config):
    run = train(toy_config(), tmp_path / "t")
    raw = bytearray((run.path / "model.safetensors").read_bytes())
    raw[-5] ^= 1
    (run.path / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="does not match"):
        gankit.load_generator(run.path)


def test_corrupted_state_is_checkpoint_error(tmp_path, toy_config):
    run = train(toy_config(), tmp_path / "c")
    (run.path / "state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"state\.pt"):
        resume(run.path)


def test_adaptive_augmentation_state_survives_resume(tmp_path, digits_config):
    settings = ("objective.augment=color,translation", "objective.ada_target=0.1")
    full = train(digits_config("train.steps=6", *settings), tmp_path / "full")
    part = train(digits_config("train.steps=3", *settings), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    a, b = load_state(full.path), load_state(resumed.path)
    pa, pb = a["model"]["objective"]["p"], b["model"]["objective"]["p"]
    assert pa == pb != 0.0  # p moved, and resumed alike
    ga, gb = a["networks"]["g"], b["networks"]["g"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
