"""ONNX export of the kinds that lacked it (issue 12 leftovers): ProGAN's generator at its final
resolution, both CycleGAN directions, BiGAN's generator and encoder. Each file must match eager
PyTorch to 1e-5 on fresh inputs, be recorded (with its SHA-256) in a re-sealed model.json, and
the kinds that still cannot export must say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gankit.config import load_config
from gankit.engine import train
from gankit.errors import CheckpointError, ConfigError
from gankit.export import export_model, ort_session
from gankit.modeldir import sha256_file, verify_model_dir, write_model_dir

pytest.importorskip("onnxruntime")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
QUIET = [
    "train.progress=false",
    "train.log_every=1",
    "train.checkpoint_every=100",
    "train.sample_every=100",
]
RUNS = {  # tiny versions of the shipped recipes (as their model tests)
    "progan": (
        "digits-progan.yaml",
        [
            "model.latent_dim=8",
            "model.widths=[8,8]",
            "model.phase_steps=1",
            "model.fade_steps=1",
            "train.batch_size=8",
            "train.steps=2",
        ],
    ),
    "cyclegan": (
        "digits-cyclegan.yaml",
        [
            "model.g_width=4",
            "model.d_width=4",
            "model.g_blocks=1",
            "model.pool_size=2",
            "train.batch_size=4",
            "train.steps=2",
        ],
    ),
    "bigan": (
        "digits-bigan.yaml",
        [
            "model.latent_dim=3",
            "model.g_widths=[8]",
            "model.e_widths=[8]",
            "model.d_widths=[8]",
            "train.batch_size=16",
            "train.steps=2",
        ],
    ),
}
TOL = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("kinds")
    return {
        name: train(load_config(CONFIGS / recipe, [*extra, *QUIET]), root / name).path
        for name, (recipe, extra) in RUNS.items()
    }


def run_onnx(path: Path, **feed: torch.Tensor) -> torch.Tensor:
    session = ort_session(path)
    return torch.from_numpy(session.run(None, {k: v.numpy() for k, v in feed.items()})[0])


def recorded(directory: Path, key: str) -> Path:
    """The file model.json records under `key`, after checking its hash and the seal."""
    spec = verify_model_dir(directory)  # raises unless the re-sealed spec verifies
    entry = spec[key]
    path = directory / entry["file"]
    assert entry["sha256"] == sha256_file(path) and entry["parity_max_abs"] <= TOL
    return path


def test_progan_generator_at_its_final_resolution(runs, tmp_path):
    from gankit.models.progan import load_progan

    out = tmp_path / "progan"
    report = export_model(runs["progan"], out, exporter="torchscript")
    assert report["parity_max_abs"] <= TOL
    gen = load_progan(out)
    z = gen.sample_latent(5, seed=11)
    got = run_onnx(recorded(out, "onnx"), z=z)
    assert got.shape == (5, 1, 8, 8)  # the recipe's last resolution
    torch.testing.assert_close(got, gen.decode(z), rtol=0, atol=TOL)
    with pytest.raises(ConfigError, match="--prune is not available for a ProGAN"):
        export_model(runs["progan"], tmp_path / "pruned", prune=0.5)


def test_progan_is_served_from_its_onnx_file(runs, tmp_path):
    from gankit.models.progan import serve_progan
    from gankit.serve.models import LoadOptions

    out = tmp_path / "progan"
    export_model(runs["progan"], out, exporter="torchscript")
    spec = verify_model_dir(out)
    served = serve_progan(out, spec, LoadOptions("auto"))
    assert served.runtime == "onnx"
    z = served.latent(3, 5, None)
    expected = serve_progan(out, spec, LoadOptions("torch")).decode(z, None)
    torch.testing.assert_close(
        torch.from_numpy(served.decode(z, None)), torch.from_numpy(expected), rtol=0, atol=TOL
    )


def test_cyclegan_exports_each_direction(runs, tmp_path):
    from gankit.models.cyclegan import load_cyclegan

    out = tmp_path / "cyclegan"
    report = export_model(runs["cyclegan"], out, exporter="torchscript")
    model = load_cyclegan(out)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    outputs = {}
    for direction in ("a2b", "b2a"):
        assert report[f"parity_max_abs_{direction}"] <= TOL
        outputs[direction] = run_onnx(recorded(out, f"onnx_{direction}"), x=x)
        expected = model.translate(x, direction)
        torch.testing.assert_close(outputs[direction], expected, rtol=0, atol=TOL)
    assert not torch.allclose(outputs["a2b"], outputs["b2a"])  # two different networks
    with pytest.raises(ConfigError, match="neither --prune nor --quantize"):
        export_model(runs["cyclegan"], tmp_path / "q", quantize=True)


def test_bigan_exports_generator_and_encoder(runs, tmp_path):
    from gankit.models.bigan import load_bigan

    out = tmp_path / "bigan"
    report = export_model(runs["bigan"], out, exporter="torchscript")
    assert report["parity_max_abs"] <= TOL and report["encoder_parity_max_abs"] <= TOL
    model = load_bigan(out)
    z = model.sample_latent(5, seed=2)
    got = run_onnx(recorded(out, "onnx"), z=z)
    torch.testing.assert_close(got, model.decode(z), rtol=0, atol=TOL)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(4)) * 2 - 1
    codes = run_onnx(recorded(out, "onnx_encoder"), x=x)
    torch.testing.assert_close(codes, model.encode(x), rtol=0, atol=TOL)
    assert json.loads((out / "model.json").read_text())["onnx_encoder"]["inputs"] == ["x"]
    from gankit.serve.models import LoadOptions, serve_bigan

    served = serve_bigan(out, verify_model_dir(out), LoadOptions("auto"))
    assert served.runtime == "onnx"  # the generator in ONNX Runtime, as a VAE's decoder
    torch.testing.assert_close(
        torch.from_numpy(served.decode(z, None)), model.decode(z), rtol=0, atol=TOL
    )


@pytest.mark.parametrize("name", ["tabular-synth", "tabular-vae"])
def test_kinds_without_export_say_so(tmp_path, name):
    """The kind is read from the sealed model.json before anything is loaded."""
    write_model_dir(tmp_path, {"w": torch.zeros(1)}, {"kind": name})
    with pytest.raises(CheckpointError, match=f"a '{name}' model has no ONNX export"):
        export_model(tmp_path, tmp_path / "x")
