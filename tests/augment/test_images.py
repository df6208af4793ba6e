"""`augment_images` / `gankit augment FOLDER`: a folder per class in, a folder of generated PNGs
per class out, the trained model kept beside it; bad folders refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gankit.augment.images import augment_images, model_dir
from gankit.errors import ConfigError, DataError

TINY = ["model.latent_dim=8", "model.g_width=8", "model.d_width=8", "train.ema=0"]


def _folder(root, classes=("cat", "dog"), n=6):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_folder_in_generated_folder_per_class_out(tmp_path):
    data = _folder(tmp_path / "data")
    out = tmp_path / "aug"
    result = augment_images(
        data, out, per_class=3, steps=2, batch_size=4, overrides=TINY, progress=False
    )
    assert result["classes"] == {"cat": 3, "dog": 3} and result["real"] == {"cat": 6, "dog": 6}
    for c in ("cat", "dog"):
        files = sorted((out / c).glob("*.png"))
        assert len(files) == 3
        with Image.open(files[0]) as img:
            assert img.size == (8, 8) and img.mode == "L"
    assert model_dir(out) == tmp_path / "aug.model"
    assert (model_dir(out) / "model.json").is_file()
    with pytest.raises(ConfigError, match="not empty"):
        augment_images(data, out, per_class=1, steps=1, overrides=TINY, progress=False)


def test_bad_folders_are_refused(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        augment_images(tmp_path / "nope", tmp_path / "o", steps=1)
    one = _folder(tmp_path / "one", classes=("only",), n=2)
    with pytest.raises(DataError, match="at least 2"):
        augment_images(one, tmp_path / "o", steps=1)
    with pytest.raises(ConfigError, match="per_class"):
        augment_images(_folder(tmp_path / "two", n=2), tmp_path / "o", per_class=0)


def test_gankit_augment_on_a_folder(tmp_path, capsys):
    from gankit.cli import main

    data = _folder(tmp_path / "data", n=3)
    out = tmp_path / "gen"
    argv = ["augment", str(data), "--out", str(out), "--steps", "1", "--per-class", "2"]
    assert main([*argv, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "cat" in printed and "gen.model" in printed
    assert len(list((out / "dog").glob("*.png"))) == 2
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    assert main(["augment", str(tmp_path / "t.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "--target" in capsys.readouterr().err
