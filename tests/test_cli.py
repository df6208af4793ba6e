import subprocess
import sys

from PIL import Image

from gankit.cli import main

from .conftest import TINY_DIGITS


def sets(items):
    return [arg for item in items for arg in ("--set", item)]


def test_train_sample_resume(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("{}\n")
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(run), *sets(TINY_DIGITS)]) == 0
    assert main(["train", "--resume", str(run), "--set", "train.steps=8"]) == 0
    assert "step 8" in capsys.readouterr().out
    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "--n", "16", "--out", str(grid), "--seed", "3"]) == 0
    assert Image.open(grid).size == ((4 * 9 + 1) * 8,) * 2  # 4×4 tiles of 8 px, 1 px gaps, ×8
    strip = tmp_path / "interp.png"
    assert main(["sample", str(run), "--n", "20", "--interpolate", "--out", str(strip)]) == 0
    assert Image.open(strip).size[0] > Image.open(strip).size[1]
    kept = tmp_path / "kept.png"
    assert main(["sample", str(run), "--n", "16", "--rejection", "--out", str(kept)]) == 0
    assert "rejection sampling kept" in capsys.readouterr().out
    assert Image.open(kept).size == Image.open(grid).size


def test_user_errors_are_one_line_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gankit.cli", "train", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"gankit: error: {tmp_path / 'nope.yaml'}: no such config file"
    ]
    result = subprocess.run(
        [sys.executable, "-m", "gankit.cli", "sample", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "model.json: missing" in result.stderr


def test_bench_unknown_name(capsys):
    assert main(["bench", "nonexistent"]) == 2
    assert main(["bench", "digits", "--quick", "--plots", "somewhere"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


# ------------------------------------------------------ the CLI starts without importing torch
NO_TORCH = """
import sys
from gankit.cli import main
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "numpy", "fastapi", "sklearn") if m in sys.modules)
print("HEAVY", heavy)
"""


def test_help_and_usage_errors_do_not_import_torch():
    argvs = [
        ["--help"],
        ["--version"],
        ["bogus"],  # unknown command
        ["sample"],  # missing argument
        ["sample", "--help"],
        ["eval", "run", "--metrics", "nope"],  # bad choice
        ["check"],
    ]
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH.format(argvs=argvs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []", result.stderr
    assert "usage: gankit" in result.stdout and "invalid choice: 'bogus'" in result.stderr
    assert "--min-acceptance" in result.stdout  # `sample --help` is the full parser


def test_command_table_matches_the_modules():
    """cli.COMMANDS (what `gankit --help` lists without importing) is what the modules add."""
    import argparse
    import importlib

    from gankit.cli import COMMAND_MODULES, COMMANDS

    for module in COMMAND_MODULES:
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(subparsers)
        helps = {a.dest: a.help for a in subparsers._choices_actions}
        assert helps == {n: h for n, (m, h) in COMMANDS.items() if m == module}


def test_eval_choices_are_the_metrics_evaluate_knows():
    from gankit.commands import EVAL_METRICS
    from gankit.metrics.evaluate import ALL_METRICS

    assert EVAL_METRICS == ALL_METRICS


def test_sample_rejection_prints_its_cost_and_takes_a_floor(tmp_path, capsys):
    from .test_modeldir import save_toy_generator

    save_toy_generator(tmp_path / "m")
    out = tmp_path / "kept.png"
    args = ["sample", str(tmp_path / "m"), "--n", "50", "--rejection", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "calibration keeps" in captured.err and "50 samples need at least" in captured.err
    assert "rejection sampling kept" in captured.out and out.is_file()
    # an untrained D's logits vary, so not every draw is kept: a floor of 1 refuses, with a hint
    assert main([*args, "--min-acceptance", "1"]) == 2
    assert "--min-acceptance" in capsys.readouterr().err


def test_check_verifies_and_reseals(tmp_path, capsys):
    import json

    from .test_modeldir import save_toy_generator

    save_toy_generator(tmp_path)
    assert main(["check", str(tmp_path)]) == 0
    assert "ok, kind toy-generator" in capsys.readouterr().out
    spec = json.loads((tmp_path / "model.json").read_text())
    del spec["spec_sha256"]
    (tmp_path / "model.json").write_text(json.dumps(spec))
    assert main(["check", str(tmp_path)]) == 0
    assert "UNSEALED" in capsys.readouterr().out
    assert main(["check", str(tmp_path), "--reseal"]) == 0
    assert "spec sealed" in capsys.readouterr().out
    sealed = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**sealed, "latent_dim": 7}))
    assert main(["check", str(tmp_path), "--reseal"]) == 2  # edited after sealing: refused
    assert "model.json was edited" in capsys.readouterr().err
    (tmp_path / "model.json").write_text(json.dumps({**spec, "latent_dim": 7}))  # unsealed
    assert main(["check", str(tmp_path), "--reseal"]) == 2  # still checked against the weights
    assert "does not fit the network" in capsys.readouterr().err
