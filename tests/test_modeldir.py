import hashlib
import json
import warnings

import pytest
import torch

from gankit.errors import CheckpointError
from gankit.modeldir import read_model_dir, write_model_dir


def test_roundtrip(tmp_path):
    tensors = {"w": torch.randn(3, 4), "b": torch.zeros(4)}
    write_model_dir(tmp_path / "m", tensors, {"kind": "test"})
    loaded, spec = read_model_dir(tmp_path / "m")
    assert spec["kind"] == "test" and len(spec["weights_sha256"]) == 64
    assert torch.equal(loaded["w"], tensors["w"])


def test_tampered_weights_refused(tmp_path):
    write_model_dir(tmp_path, {"w": torch.ones(8)}, {"kind": "test"})
    raw = bytearray((tmp_path / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="does not match"):
        read_model_dir(tmp_path)


def test_bad_spec(tmp_path):
    write_model_dir(tmp_path, {"w": torch.ones(8)}, {"kind": "test"})
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_model_dir(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="format"):
        read_model_dir(tmp_path)


def test_missing_dir(tmp_path):
    with pytest.raises(CheckpointError, match="no such model directory"):
        read_model_dir(tmp_path / "nope")


def test_written_files_follow_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_model_dir(tmp_path, {"w": torch.ones(2)}, {"kind": "test"})
    finally:
        os.umask(old)
    for name in ("model.json", "model.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_expected_kind_is_checked(tmp_path):
    write_model_dir(tmp_path, {"w": torch.ones(2)}, {"kind": "imputer"})
    assert read_model_dir(tmp_path, ("imputer",))[1]["kind"] == "imputer"
    with pytest.raises(CheckpointError, match="model kind is 'imputer', expected tabular-synth"):
        read_model_dir(tmp_path, ("tabular-synth",))


# --------------------------------------------------------------- the spec is integrity-checked
# (issue 11 item 6: model.json was not covered; an edited latent_dim or width loaded and then
# allocated terabytes)
TOY_ARCH = {
    "family": "mlp",
    "latent_dim": 4,
    "g_width": 16,
    "d_width": 16,
    "depth": 2,
    "g_activation": "relu",
    "d_activation": "leaky_relu",
    "g_batch_norm": False,
    "d_batch_norm": False,
    "g_output": "none",
    "d_dropout": 0.0,
    "maxout_pieces": 5,
    "spectral_norm": False,
    "minibatch_std": False,
    "init": "default",
    "latent_categories": 0,
    "pack": 1,
    "data_shape": [2],
}


def save_toy_generator(path, **arch):
    """A toy generator directory as training writes it (G and D weights), without training."""
    from gankit.generator import DISCRIMINATOR_PREFIX
    from gankit.nets import build_discriminator, build_generator

    arch = {**TOY_ARCH, **arch}
    torch.manual_seed(0)
    g, d = build_generator(arch), build_discriminator(arch)
    tensors = {**g.state_dict()}
    tensors.update({DISCRIMINATOR_PREFIX + k: v for k, v in d.state_dict().items()})
    spec = {
        "kind": "toy-generator",
        "architecture": arch,
        "latent_dim": arch["latent_dim"],
        "data": {"name": "ring", "shape": list(arch["data_shape"])},
        "config": {"objective": {"loss": "non-saturating"}},
    }
    return write_model_dir(path, tensors, spec)


def edit_spec(path, edit, reseal=False):
    """Edit model.json in place; `reseal` recomputes its hash like a forger would."""
    from gankit.modeldir import seal_spec

    spec = json.loads((path / "model.json").read_text())
    edit(spec)
    if reseal:
        spec = seal_spec(spec)
    (path / "model.json").write_text(json.dumps(spec))


def test_spec_hash_is_recorded_and_checked(tmp_path):
    from gankit.modeldir import spec_sha256

    write_model_dir(tmp_path, {"w": torch.ones(2)}, {"kind": "test", "n": (1, 2)})
    spec = json.loads((tmp_path / "model.json").read_text())
    # independent expectation: SHA-256 of the sorted, compact JSON without the hash itself
    body = {k: v for k, v in spec.items() if k != "spec_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert spec["spec_sha256"] == hashlib.sha256(canonical).hexdigest() == spec_sha256(spec)
    edit_spec(tmp_path, lambda s: s.update(kind="imputer"))
    with pytest.raises(CheckpointError, match=r"model\.json was edited"):
        read_model_dir(tmp_path)


def test_edited_latent_dim_refused(tmp_path):
    from gankit.generator import load_generator

    save_toy_generator(tmp_path)
    assert load_generator(tmp_path).latent_dim == 4
    edit_spec(tmp_path, lambda s: s.update(latent_dim=10**12))
    with pytest.raises(CheckpointError, match="spec_sha256"):
        load_generator(tmp_path)
    # a forger who also rewrites the hash is stopped by the bounds / the network's shapes
    edit_spec(tmp_path, lambda s: s.update(latent_dim=10**12), reseal=True)
    with pytest.raises(CheckpointError, match="'latent_dim' is 1000000000000"):
        load_generator(tmp_path)
    edit_spec(tmp_path, lambda s: s.update(latent_dim=5), reseal=True)
    with pytest.raises(CheckpointError, match="does not fit the network"):
        load_generator(tmp_path)


def test_edited_width_refused_before_any_tensor_is_read(tmp_path, monkeypatch):
    import safetensors.torch

    from gankit.generator import load_generator

    save_toy_generator(tmp_path)
    edit_spec(tmp_path, lambda s: s["architecture"].update(g_width=10**6), reseal=True)

    def no_read(*args, **kwargs):
        raise AssertionError("tensors were read before the spec was checked")

    monkeypatch.setattr(safetensors.torch, "load_file", no_read)
    with pytest.raises(CheckpointError, match=r"has shape \[16, 4\] in the weights"):
        load_generator(tmp_path)


def test_edited_data_shape_refused(tmp_path):
    from gankit.generator import load_generator

    save_toy_generator(tmp_path)
    edit_spec(tmp_path, lambda s: s["data"].update(shape=[3]), reseal=True)
    with pytest.raises(CheckpointError, match=r"makes samples of shape \[2\], data.shape says"):
        load_generator(tmp_path)
    edit_spec(tmp_path, lambda s: s["data"].update(shape=[2**20, 2**20]), reseal=True)
    with pytest.raises(CheckpointError, match=r"data\.shape"):
        load_generator(tmp_path)


MEASURE_WIDTH = """
import json, resource, sys, time
from pathlib import Path
import torch
from gankit.errors import CheckpointError
from gankit.generator import load_generator
from gankit.modeldir import seal_spec
path = Path(sys.argv[1])
spec = json.loads((path / "model.json").read_text())
spec["architecture"]["g_width"] = spec["architecture"]["d_width"] = 10**6
(path / "model.json").write_text(json.dumps(seal_spec(spec)))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_generator(path)
except CheckpointError:
    pass
else:
    raise SystemExit("loaded")
print(json.dumps({"seconds": time.perf_counter() - start,
                  "grew_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}))
"""


def test_huge_width_fails_fast_without_allocating(tmp_path):
    """A 10^6 width used to allocate 8 GB before failing; now the meta-device check refuses it
    in well under a second with no growth of the process's peak memory."""
    import subprocess
    import sys

    save_toy_generator(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE_WIDTH, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    assert measured["seconds"] < 2.0
    assert measured["grew_kib"] < 64 * 1024  # a real 10^6-wide layer pair is ~8 GB


def test_unsealed_spec_loads_with_a_warning_and_can_be_resealed(tmp_path):
    from gankit.generator import load_generator
    from gankit.modeldir import UnsealedSpecWarning, reseal_model_dir

    save_toy_generator(tmp_path)
    edit_spec(tmp_path, lambda s: s.pop("spec_sha256"))  # as written before this change
    with pytest.warns(UnsealedSpecWarning, match="--reseal"):
        gen = load_generator(tmp_path)
    assert gen.latent_dim == 4
    reseal_model_dir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_generator(tmp_path)
    # an unsealed spec is still checked against the weights
    edit_spec(tmp_path, lambda s: (s.pop("spec_sha256"), s.update(latent_dim=10**12)))
    with pytest.warns(UnsealedSpecWarning), pytest.raises(CheckpointError, match="latent_dim"):
        load_generator(tmp_path)


def test_sample_count_bounded_by_memory(tmp_path):
    from gankit.errors import DataError
    from gankit.generator import load_generator

    save_toy_generator(tmp_path, data_shape=[3, 64, 64], family="mlp")
    gen = load_generator(tmp_path)
    with pytest.raises(DataError, match="more than one call may hold"):
        gen.sample(100_000)  # 1.2e9 values: 4.9 GB
    assert gen.sample(5, seed=0).shape == (5, 3, 64, 64)


def _imputer(tmp_path):
    import numpy as np

    from gankit.tabular import GANImputer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    x[rng.random(x.shape) < 0.1] = np.nan
    return GANImputer(n_steps=0, random_state=0).fit(x).save(tmp_path)


def _synth(tmp_path):
    import numpy as np
    import pandas as pd

    from gankit.tabular import TabularGAN

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=40), "b": rng.choice(["x", "y"], 40)})
    model = TabularGAN(n_steps=1, batch_size=20, random_state=0)
    return model.fit(df, discrete_columns=["b"]).save(tmp_path)


def test_imputer_spec_edits_refused(tmp_path):
    from gankit.tabular import GANImputer

    _imputer(tmp_path)
    GANImputer.load(tmp_path)
    edit_spec(tmp_path, lambda s: s["fitted"].update(hidden=10**6))
    with pytest.raises(CheckpointError, match="edited"):
        GANImputer.load(tmp_path)
    edit_spec(tmp_path, lambda s: s["fitted"].update(hidden=10**5), reseal=True)
    with pytest.raises(CheckpointError, match="'hidden' is 100000"):
        GANImputer.load(tmp_path)
    edit_spec(tmp_path, lambda s: s["fitted"].update(hidden=999), reseal=True)
    with pytest.raises(CheckpointError, match="in the weights but the spec builds"):
        GANImputer.load(tmp_path)


def test_synth_spec_edits_refused(tmp_path):
    from gankit.tabular import TabularGAN

    _synth(tmp_path)
    TabularGAN.load(tmp_path)
    edit_spec(tmp_path, lambda s: s["params"].update(z_dim=10**12), reseal=True)
    with pytest.raises(CheckpointError, match="'z_dim' is 1000000000000"):
        TabularGAN.load(tmp_path)
    edit_spec(tmp_path, lambda s: s["params"].update(z_dim=129, hidden=[5000, 256]), reseal=True)
    with pytest.raises(CheckpointError, match="in the weights but the spec builds"):
        TabularGAN.load(tmp_path)
