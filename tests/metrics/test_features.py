"""Feature extractors: the shipped digits classifier, pixels, and the Inception port (random
weights through the same loading code; nothing is downloaded)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gankit.data import load_digits
from gankit.errors import CheckpointError, DataError
from gankit.metrics.features import DIGITS_WEIGHTS, PixelExtractor, digits_extractor
from gankit.metrics.inception import (
    InceptionExtractor,
    download_inception_weights,
    preprocess_tf1,
    tf1_resize_bilinear,
)


def test_digits_classifier_heldout_accuracy_and_hash() -> None:
    ext = digits_extractor()
    x, y = load_digits("test")
    acc = float((ext.logits(x).argmax(1) == y).double().mean())
    assert acc >= 0.97
    assert ext.sha256 == hashlib.sha256(DIGITS_WEIGHTS.read_bytes()).hexdigest()
    feats = ext.features(x)
    assert feats.shape == (360, 128) and feats.dtype == torch.float64
    with pytest.raises(DataError, match=r"\[N, 1, 8, 8\]"):
        ext.features(torch.zeros(2, 3, 8, 8))


def test_pixel_extractor_flattens() -> None:
    x = torch.arange(24.0).reshape(2, 3, 2, 2)
    assert PixelExtractor().features(x).tolist() == x.reshape(2, -1).double().tolist()


def test_tf1_resize_matches_scalar_formula() -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 1, 5, 7, generator=g, dtype=torch.float64)
    out = tf1_resize_bilinear(img, size=11)
    a = img[0, 0].numpy()
    for i in range(11):
        for j in range(11):
            sy, sx = i * 5 / 11, j * 7 / 11
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
            fy, fx = sy - y0, sx - x0
            top = a[y0, x0] * (1 - fx) + a[y0, x1] * fx
            bot = a[y1, x0] * (1 - fx) + a[y1, x1] * fx
            assert abs(out[0, 0, i, j].item() - (top * (1 - fy) + bot * fy)) < 1e-12
    # Exact 2:1 downsampling picks every other pixel (no half-pixel offset, unlike torch).
    big = torch.rand(1, 3, 598, 598, generator=g)
    assert torch.equal(tf1_resize_bilinear(big), big[:, :, ::2, ::2])


def test_preprocess_tf1_range_and_channels() -> None:
    x = preprocess_tf1(torch.full((2, 1, 8, 8), 1.0))
    assert x.shape == (2, 3, 299, 299)
    assert torch.allclose(x, torch.full_like(x, 127 / 128))
    with pytest.raises(DataError):
        preprocess_tf1(torch.zeros(2, 2, 8, 8))


def test_inception_loads_state_dict_and_is_batch_invariant(random_inception: Path) -> None:
    ext = InceptionExtractor(random_inception, batch_size=1)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    f1 = ext.features(images)
    assert f1.shape == (2, 2048) and torch.isfinite(f1).all()
    ext.batch_size = 2
    assert torch.allclose(ext.features(images), f1, rtol=1e-5, atol=1e-6)
    assert ext.logits(images[:1]).shape == (1, 1008)
    assert ext.sha256 == hashlib.sha256(random_inception.read_bytes()).hexdigest()
    assert "tf1-bilinear-299" in ext.preprocessing


def test_inception_rejects_wrong_weights(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    save_file({"fc.weight": torch.zeros(3, 3)}, str(bad))
    with pytest.raises(CheckpointError, match=r"bad\.safetensors"):
        InceptionExtractor(bad)
    with pytest.raises(CheckpointError, match="not found"):
        InceptionExtractor(tmp_path / "missing.pth")


def test_download_checks_sha256_with_a_local_url(tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"not really inception" * 100)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = download_inception_weights(tmp_path / "out" / "w.pth", url=src.as_uri(), sha256=digest)
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match="does not match"):
        download_inception_weights(tmp_path / "out2.pth", url=src.as_uri(), sha256="0" * 64)
    assert not (tmp_path / "out2.pth").exists()
