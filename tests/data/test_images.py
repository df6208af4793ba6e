import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import (
    grid_means,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_mnist,
    read_idx,
    ring_means,
    sample_grid,
    sample_ring,
)
from gankit.data.download import download
from gankit.errors import DataError


def write_idx(path, array, gz=True):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_digits_splits_and_range():
    x, y = load_digits("train")
    xt, yt = load_digits("test")
    assert x.shape == (1437, 1, 8, 8) and xt.shape == (360, 1, 8, 8)
    assert x.min() == -1 and x.max() == 1 and x.dtype == torch.float32
    assert set(y.tolist()) == set(range(10)) and set(yt.tolist()) == set(range(10))
    with pytest.raises(DataError, match="split"):
        load_digits("validation")


def test_ring_has_eight_distinct_centres_at_2pi_k_over_8():
    means = ring_means(8, 1.0)
    assert torch.cdist(means, means).add(torch.eye(8) * 9).min() > 0.7
    assert torch.allclose(means[2], torch.tensor([0.0, 1.0]), atol=1e-6)
    points = sample_ring(4000, std=0.01, seed=1)
    nearest = torch.cdist(points, means).argmin(1)
    assert torch.bincount(nearest, minlength=8).min() > 400


def test_grid_means_and_std():
    means = grid_means()
    assert means.shape == (25, 2) and set(means[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    points = sample_grid(5000, std=0.05, seed=0)
    dist = torch.cdist(points, means).min(1).values
    assert 0.04 < (dist**2).mean().div(2).sqrt() < 0.06


def test_mnist_idx_roundtrip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(5), gz=False)
    x, y = load_mnist(tmp_path, "train")
    assert x.shape == (5, 1, 28, 28) and y.tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(
        x[0, 0], torch.tensor(images[0] / 255 * 2 - 1, dtype=torch.float32), atol=1e-6
    )


def test_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x09\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DataError, match="wrong magic number"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "t", np.zeros((4, 2, 2)), gz=False)
    (tmp_path / "t").write_bytes((tmp_path / "t").read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "t")
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "missing")
    with pytest.raises(DataError, match="missing train-images"):
        load_mnist(tmp_path, "train")


def test_cifar_binary(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)]:
        records = np.concatenate([rng.integers(0, 10, (3, 1)), rng.integers(0, 256, (3, 3072))], 1)
        records.astype(np.uint8).tofile(tmp_path / name)
    x, y = load_cifar10(tmp_path, "train")
    assert x.shape == (15, 3, 32, 32) and y.max() <= 9
    (tmp_path / "test_batch.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(DataError, match="whole number"):
        load_cifar10(tmp_path, "test")


def test_image_folder(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (16, 16), (i * 100, 0, 0)).save(tmp_path / cls / f"{i}.png")
    x, y = load_image_folder(tmp_path)
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [0, 0, 1, 1]
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "small.png")
    with pytest.raises(DataError, match="differs from"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=8)[0].shape == (5, 3, 8, 8)
    (tmp_path / "a" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="unreadable image"):
        load_image_folder(tmp_path, size=8)


def test_download_checks_sha256(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"payload")
    good = "sha256:" + hashlib.sha256(b"payload").hexdigest()
    target = download(source.as_uri(), tmp_path / "out" / "file.bin", good)
    assert target.read_bytes() == b"payload"
    with pytest.raises(DataError, match="does not match"):
        download(source.as_uri(), tmp_path / "out" / "other.bin", "sha256:" + "0" * 64)
    assert not (tmp_path / "out" / "other.bin").exists()
    assert not list((tmp_path / "out").glob("*.part"))


def test_nan_in_array_is_data_error():
    from gankit.data import check_finite

    with pytest.raises(DataError, match="1 NaN/inf"):
        check_finite(torch.tensor([1.0, float("nan")]), "x")
