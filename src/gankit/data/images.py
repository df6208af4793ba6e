"""Image datasets as float tensors [N, C, H, W] in [-1, 1] with int64 labels.

Formats are read with numpy and Pillow only (no pickle, no torchvision): scikit-learn's bundled
digits, MNIST/Fashion-MNIST IDX files, the CIFAR-10 binary release, and folders of images.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import numpy as np
import torch

from gankit.data.download import download
from gankit.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
DIGITS_TEST_SIZE = 360

# name -> (base URL, {file: checksum}). Checksums from the publishers (MNIST/Fashion: SHA-256
# of the .gz files as mirrored; CIFAR-10: the MD5 published on its page, the only one it gives).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",  # noqa: E501
}
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",  # noqa: E501
}
SOURCES = {
    "mnist": ("https://storage.googleapis.com/cvdf-datasets/mnist/", MNIST_FILES),
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        FASHION_FILES,
    ),
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-10-binary.tar.gz": "md5:c32a1d4ab5d03f1284b67883e8d87530"},
    ),
}


def to_unit_range(pixels: np.ndarray, max_value: float) -> torch.Tensor:
    """Map [0, max_value] to float32 [-1, 1]."""
    return torch.from_numpy(np.asarray(pixels, dtype=np.float32) / max_value * 2.0 - 1.0)


def load_digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8×8 digits as [N, 1, 8, 8] in [-1, 1] and labels.

    The split is fixed (stratified, 360 test images, random_state=0) so that every metric and
    feature extractor agrees on what "held out" means.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise DataError(f"digits split must be 'train', 'test' or 'all', got {split!r}")
    bunch = sk_load_digits()
    images, labels = bunch.images, bunch.target
    if split != "all":
        tr_x, te_x, tr_y, te_y = train_test_split(
            images, labels, test_size=DIGITS_TEST_SIZE, stratify=labels, random_state=0
        )
        images, labels = (tr_x, tr_y) if split == "train" else (te_x, te_y)
    x = to_unit_range(images[:, None], 16.0)
    return x, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as a uint8 array, checking magic number and size."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupted gzip data ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(
            f"{path}: wrong magic number {raw[:4].hex()}; expected 0000 08 0N (unsigned-byte IDX)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or oversized file: {len(raw) - header} data bytes, "
            f"expected {expected} for shape {shape}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_pair(root: Path, split: str) -> tuple[Path, Path]:
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [root / f"{prefix}-{kind}{ext}" for ext in (".gz", "")]
        match = next((c for c in candidates if c.is_file()), None)
        if match is None:
            raise DataError(f"{root}: missing {candidates[0].name} (or {candidates[1].name})")
        found.append(match)
    return found[0], found[1]


def load_mnist(
    root: str | os.PathLike,
    split: str = "train",
    download_missing: bool = False,
    variant: str = "mnist",
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST or Fashion-MNIST (`variant="fashion-mnist"`) from IDX files in `root`."""
    root = Path(root)
    if download_missing:
        download_dataset(variant, root)
    images_path, labels_path = _idx_pair(root, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{root}: {images_path.name} has shape {images.shape} and {labels_path.name} "
            f"{labels.shape}; expected [N, H, W] images and N labels"
        )
    return to_unit_range(images[:, None], 255.0), torch.from_numpy(labels.astype(np.int64))


def load_cifar10(
    root: str | os.PathLike, split: str = "train", download_missing: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 from its binary release (no pickle): `data_batch_*.bin` / `test_batch.bin`."""
    root = Path(root)
    if download_missing:
        archive = download_dataset("cifar10", root)[0]
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    folder = root / "cifar-10-batches-bin" if (root / "cifar-10-batches-bin").is_dir() else root
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    records = []
    record_size = 1 + 3 * 32 * 32
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing CIFAR-10 binary batch")
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % record_size:
            raise DataError(
                f"{path}: {raw.size} bytes is not a whole number of {record_size}-byte records"
            )
        records.append(raw.reshape(-1, record_size))
    data = np.concatenate(records)
    labels = data[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{folder}: label {labels.max()} out of range 0–9; not CIFAR-10 binary")
    images = data[:, 1:].reshape(-1, 3, 32, 32)
    return to_unit_range(images, 255.0), torch.from_numpy(labels)


def load_image_folder(
    root: str | os.PathLike, size: int | None = None, channels: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image under `root`; sub-folder names become labels (0 when the folder is flat).

    All images must share one size unless `size` is given (then each is resized to size×size).
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    classes = sorted({p.parent.relative_to(root).as_posix() for p in paths})
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise DataError(f"channels must be 1 or 3, got {channels}")
    arrays, labels, first_size = [], [], None
    for path in paths:
        try:
            with Image.open(path) as img:
                img = img.convert(mode)
                if size is not None:
                    img = img.resize((size, size), Image.Resampling.BILINEAR)
                array = np.asarray(img)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{path}: unreadable image ({exc})") from exc
        first_size = first_size or array.shape[:2]
        if array.shape[:2] != first_size:
            raise DataError(
                f"{path}: size {array.shape[1]}×{array.shape[0]} differs from "
                f"{first_size[1]}×{first_size[0]} of the first image; pass size= to resize"
            )
        arrays.append(array.reshape(*array.shape[:2], channels))
        labels.append(classes.index(path.parent.relative_to(root).as_posix()))
    stacked = np.stack(arrays).transpose(0, 3, 1, 2)
    return to_unit_range(stacked, 255.0), torch.tensor(labels, dtype=torch.int64)


def download_dataset(name: str, root: str | os.PathLike) -> list[Path]:
    """Download a dataset's files into `root`, checking each checksum; returns the paths."""
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; downloadable: {sorted(SOURCES)}")
    base, files = SOURCES[name]
    return [download(base + file, Path(root) / file, checksum) for file, checksum in files.items()]


def check_finite(x: torch.Tensor, what: str) -> torch.Tensor:
    """Raise DataError if `x` holds NaN or inf."""
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise DataError(f"{what}: {bad} NaN/inf values; clean the data first")
    return x
