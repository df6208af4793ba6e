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
