import json

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
