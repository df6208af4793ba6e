"""`gankit sample --codes` / `--traversal`: InfoGAN's latent codes from the command line (issue 12).

The CLI must draw exactly what the Python API draws for the same codes and seed, and refuse bad
codes with one clear line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.bench.serve import make_generator_dir
from gankit.cli import main
from gankit.generator import load_generator
from gankit.viz import make_grid


@pytest.fixture
def run(infogan_run: Path) -> Path:
    """The tiny digits InfoGAN (tests/conftest.py): 10 categories, 2 continuous codes."""
    return infogan_run


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def expected_png(images: torch.Tensor, nrow: int | None, path: Path) -> np.ndarray:
    """What `gankit sample` writes for `images` (8×8 digits: scale 8)."""
    from gankit.viz import save_image

    save_image(make_grid(images, nrow=nrow), path, scale=8)
    return pixels(path)


def sample(run: Path, out: Path, *args: str) -> int:
    return main(["sample", str(run), "--n", "6", "--seed", "3", "--out", str(out), *args])


def test_codes_draw_what_the_api_draws(run, tmp_path):
    """`--codes cat=3,c1=0.5` equals `Generator.sample(..., codes=...)` pixel for pixel; another
    category changes the picture, the same command gives the same picture."""
    assert sample(run, tmp_path / "a.png", "--codes", "cat=3,c1=0.5") == 0
    gen = load_generator(run)
    images = gen.sample(6, seed=3, codes={"categorical": 3, "continuous": [None, 0.5]})
    np.testing.assert_array_equal(
        pixels(tmp_path / "a.png"), expected_png(images, None, tmp_path / "e.png")
    )
    assert sample(run, tmp_path / "b.png", "--codes", "categorical=3,c1=0.5") == 0
    np.testing.assert_array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))
    assert sample(run, tmp_path / "c.png", "--codes", "cat=4,c1=0.5") == 0
    assert not np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "c.png"))


def test_traversal_rows_vary_one_code(run, tmp_path):
    """`--traversal cat`: one row per noise draw, the 10 categories along it (the API's
    `traversal`); `--traversal c0`: 10 steps of continuous code 0."""
    gen = load_generator(run)
    assert sample(run, tmp_path / "t.png", "--traversal", "cat", "--n", "20") == 0
    images = gen.traversal("categorical", steps=10, rows=2, seed=3)
    assert images.shape == (20, 1, 8, 8)
    np.testing.assert_array_equal(
        pixels(tmp_path / "t.png"), expected_png(images, 10, tmp_path / "e.png")
    )
    assert sample(run, tmp_path / "u.png", "--traversal", "c0", "--n", "10") == 0
    images = gen.traversal(0, steps=10, rows=1, seed=3)
    np.testing.assert_array_equal(
        pixels(tmp_path / "u.png"), expected_png(images, 10, tmp_path / "e.png")
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codes", "cat=10"], "one of 0..9"),
        (["--codes", "cat=-1"], "one of 0..9"),
        (["--codes", "c2=1"], "unknown code 'c2'; this model's codes are cat, c0, c1"),
        (["--codes", "z=1"], "unknown code 'z'"),
        (["--codes", "c0=nan"], "finite number"),
        (["--codes", "c0=inf"], "finite number"),
        (["--codes", "c0=abc"], "finite number"),
        (["--codes", "3"], "NAME=VALUE"),
        (["--codes", "cat=1", "--labels", "2"], "--codes and --labels cannot be combined"),
        (["--codes", "cat=1", "--traversal", "c0"], "cannot be combined"),
        (["--traversal", "c9"], "unknown code 'c9'"),
    ],
)
def test_bad_codes_are_one_line_errors(run, tmp_path, capsys, args, message):
    assert sample(run, tmp_path / "x.png", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: --") and message in err
    assert not (tmp_path / "x.png").exists()


def test_a_model_without_codes_refuses_them(tmp_path, capsys):
    plain = make_generator_dir(tmp_path / "plain", width=8, latent_dim=8)
    assert sample(plain, tmp_path / "x.png", "--codes", "cat=1") == 2
    assert "has no latent codes (InfoGAN models only)" in capsys.readouterr().err
