"""`gankit encode MODEL_DIR --in images.npy|folder --out codes.npy` for every model with an
encoder: the codes equal the API's, and bad input is a clear error (exit code 2)."""

import numpy as np
import pytest
import torch

from gankit import registry
from gankit.cli import main
from gankit.config import load_config
from gankit.data.images import load_digits
from gankit.engine import train

TINY_TRAIN = ["train.batch_size=16", "train.steps=1", "train.progress=false"]
MODELS = {
    "vae": ["model.family=vae", "model.latent_dim=3", "model.widths=[8]"],
    "bigan": [
        "model.family=bigan",
        "model.latent_dim=3",
        "model.g_widths=[8]",
        "model.e_widths=[8]",
        "model.d_widths=[8]",
    ],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("encode")
    out = {}
    for name, model in MODELS.items():
        out[name] = train(load_config(None, ["data.name=digits", *model, *TINY_TRAIN]), root / name)
    gan = ["data.name=digits", "model.family=mlp", "model.g_width=8", "model.d_width=8"]
    out["gan"] = train(load_config(None, [*gan, *TINY_TRAIN]), root / "gan")
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_codes_equal_the_api(runs, tmp_path, capsys, name):
    x = load_digits("test")[0][:7]
    model = registry.load_encoder(runs[name].path)
    want = model.encode(x).numpy()
    for i, array in enumerate((x.numpy(), x.reshape(7, 64).numpy(), x[:, 0].numpy())):
        np.save(tmp_path / f"x{i}.npy", array)
        out = tmp_path / f"codes{i}.npy"
        assert main(["encode", str(runs[name].path), "--in", str(tmp_path / f"x{i}.npy"),
                     "--out", str(out)]) == 0  # fmt: skip
        np.testing.assert_allclose(np.load(out), want, atol=1e-6)
    assert "7 codes of size 3" in capsys.readouterr().out


def test_a_folder_and_uint8_pixels(runs, tmp_path):
    from PIL import Image

    pixels = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)[None].repeat(2, 0)
    pixels[1] = 255 - pixels[1]
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(pixels):
        Image.fromarray(image, mode="L").save(folder / f"{i}.png")
    np.save(tmp_path / "u8.npy", pixels)
    run = runs["bigan"].path
    assert main(["encode", str(run), "--in", str(folder), "--out", str(tmp_path / "f.npy")]) == 0
    assert main(["encode", str(run), "--in", str(tmp_path / "u8.npy"),
                 "--out", str(tmp_path / "u.npy")]) == 0  # fmt: skip
    want = registry.load_encoder(run).encode(torch.tensor(pixels / 127.5 - 1.0)[:, None]).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), want, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "u.npy"), want, atol=1e-5)


def test_bad_input_is_a_clear_error(runs, tmp_path, capsys):
    run = str(runs["vae"].path)

    def fails(array_or_path, message):
        path = array_or_path
        if not isinstance(array_or_path, str):
            path = str(tmp_path / "bad.npy")
            np.save(path, array_or_path, allow_pickle=True)
        assert main(["encode", run, "--in", path, "--out", str(tmp_path / "c.npy")]) == 2
        assert message in capsys.readouterr().err

    fails(np.zeros((3, 63), np.float32), "this model encodes [n, 1, 8, 8]")
    fails(np.zeros((3, 1, 8, 9), np.float32), "samples of shape [1, 8, 9]")
    nan = np.zeros((2, 64), np.float32)
    nan[1, 5] = np.nan
    fails(nan, "NaN")
    fails(np.array([{"a": 1}], dtype=object), "not a readable .npy array")
    fails(str(tmp_path / "missing.npy"), "not a readable .npy array")
    gan = str(runs["gan"].path)
    assert main(["encode", gan, "--in", str(tmp_path / "bad.npy")]) == 2
    assert "has no encoder" in capsys.readouterr().err
    assert not (tmp_path / "c.npy").exists()
