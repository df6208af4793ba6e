"""ONNX export: parity with PyTorch, hash recorded and checked by the server, int8, pruning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.bench.serve import make_generator_dir
from gankit.errors import ConfigError
from gankit.export import export_model, parity, prune_module, sparsity
from gankit.generator import load_generator
from gankit.modeldir import verify_model_dir
from gankit.serve.models import LoadOptions, load_models


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A digits DCGAN exported once with the default (torch.export-based) exporter + int8."""
    root = tmp_path_factory.mktemp("export")
    src = make_generator_dir(root / "src", width=16, latent_dim=16)
    report = export_model(src, root / "out", quantize=True)
    return root / "out", report


def test_onnx_parity_and_recorded_hash(exported):
    out, report = exported
    assert report["parity_max_abs"] <= 1e-4
    spec = verify_model_dir(out)  # the copied weights still verify
    assert spec["onnx"]["file"] == "model.onnx" and len(spec["onnx"]["sha256"]) == 64
    generator = load_generator(out)
    for batch in (1, 64):  # dynamic batch dimension
        z = torch.randn(batch, 16)
        from gankit.export import ort_session

        got = ort_session(out / "model.onnx").run(None, {"z": z.numpy()})[0]
        np.testing.assert_allclose(got, generator.decode(z).numpy(), atol=1e-4, rtol=0)


def test_int8_is_smaller_and_close(exported):
    _, report = exported
    assert report["onnx_int8_bytes"] < report["onnx_bytes"]
    assert 0 < report["int8_max_abs"] < 0.5  # quantized: not exact, but the same images


def test_server_runs_onnx_and_refuses_a_modified_onnx_file(exported, tmp_path):
    out, _ = exported
    served, refused = load_models([out], LoadOptions(runtime="onnx"))
    model = served[out.name]
    assert model.runtime == "onnx" and not refused
    z = model.latent(4, seed=1, truncation=None)
    torch_out = load_generator(out).decode(z).numpy()
    assert np.abs(model.decode(z, None) - torch_out).max() <= 1e-4
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    with open(bad / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    served, refused = load_models([bad], LoadOptions(runtime="onnx"))
    assert not served and "model.onnx: SHA-256 does not match" in refused[str(bad)]
    served, refused = load_models([bad], LoadOptions(runtime="onnx-int8"))
    assert served[bad.name].runtime == "onnx-int8"
    assert load_models([out])[0][out.name].runtime == "onnx"  # auto: the recorded export
    from gankit.serve import ServeOptions, create_app
    from gankit.serve.auth import KeyStore

    app = create_app([out], options=ServeOptions(keys=KeyStore([])))
    assert app.state.service.batchers == {}  # auto batching stays off under ONNX Runtime
    assert not load_models([bad])[0]  # auto refuses a modified export rather than fall back


def test_prune_zeroes_the_smallest_weights(tmp_path):
    src = make_generator_dir(tmp_path / "src", width=8, latent_dim=8)
    module = load_generator(src).module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    prune_module(module, 0.5)
    assert sparsity(module) == pytest.approx(0.5, abs=0.01)
    kept = module.project[0].weight
    original = before["project.0.weight"]
    assert torch.equal(kept[kept != 0], original[kept != 0])  # survivors unchanged
    assert original[kept == 0].abs().max() <= original[kept != 0].abs().min()
    with pytest.raises(ConfigError, match="give --out"):
        export_model(src, prune=0.5)
    report = export_model(src, tmp_path / "pruned", prune=0.5, exporter="torchscript")
    assert report["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert json.loads((tmp_path / "pruned" / "model.json").read_text())["pruned"]["amount"] == 0.5
    assert (
        parity(load_generator(tmp_path / "pruned").module, tmp_path / "pruned" / "model.onnx", 8)
        <= 1e-4
    )


def test_compression_report_measures_every_variant(tmp_path):
    import warnings

    from gankit.export import compression_report

    src = make_generator_dir(tmp_path / "src", width=8, latent_dim=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 64 samples < 128 feature dimensions: FD is biased
        report = compression_report(
            src, tmp_path / "work", prune_amounts=(0.5,), n=64, seconds=0.02, exporter="torchscript"
        )
    names = [v["variant"] for v in report["variants"]]
    assert names == ["fp32 ONNX", "int8 ONNX (dynamic)", "pruned 50% (L1, global)"]
    fp32, int8, pruned = report["variants"]
    assert fp32["max_abs_vs_fp32"] <= 1e-4 and int8["bytes"] < fp32["bytes"]
    assert (
        pruned["sparsity"] == pytest.approx(0.5, abs=0.01)
        and pruned["gzip_bytes"] < pruned["bytes"]
    )
    assert fp32["quality"]["metric"].startswith("digits-FD")
    assert fp32["quality"]["value"] == pytest.approx(report["fp32_quality"]["value"], rel=1e-3)
    assert report["n_real"] == 1797 and all(v["ort_ms_batch1"] > 0 for v in report["variants"])
