"""Feature extractors for the metrics: a small digits classifier, raw pixels and Inception-v3.

Each extractor has a `name`, the SHA-256 of its weights (`sha256`, None without weights), the
`preprocessing` it applies, and `features(x)` / `logits(x)` methods on batches of samples in
the data range. Everything a metric record needs to say which network produced a number.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from gankit.errors import CheckpointError, DataError
from gankit.modeldir import sha256_file

WEIGHTS_DIR = Path(__file__).parent / "weights"
DIGITS_WEIGHTS = WEIGHTS_DIR / "digits_classifier.safetensors"


class Extractor(Protocol):
    """What the metrics need from a feature extractor."""

    name: str
    sha256: str | None
    preprocessing: str

    def features(self, x: torch.Tensor) -> torch.Tensor: ...


def _batched(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int
) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[s : s + batch_size]) for s in range(0, x.shape[0], batch_size)])


class DigitsClassifier(nn.Module):
    """A small CNN for 8×8 digits in [-1, 1]: two 3×3 convolutions, a pool, two linear layers.

    `embed(x)` is the 128-d penultimate layer ("digits-FD" features); `forward(x)` the 10 logits.
    """

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4, self.feature_dim)
        self.fc2 = nn.Linear(self.feature_dim, 10)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        return torch.relu(self.fc1(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.embed(x))


class DigitsExtractor:
    """The shipped digits classifier: 128-d penultimate features and 10-class logits.

    Features are divided by `scale`, the RMS of the activations on the training split (stored in
    the weights' metadata), so that KID's kernel (xᵀy/d + 1)³ works at Inception-like magnitudes.
    """

    preprocessing = (
        "8x8 grey digits in [-1, 1] (pixel/16*2-1), no resize; features = penultimate ReLU "
        "activations / their RMS on the train split (weights metadata 'feature_scale')"
    )

    def __init__(self, path: str | Path = DIGITS_WEIGHTS) -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: digits classifier weights not found")
        self.model = DigitsClassifier()
        try:
            self.model.load_state_dict(load_file(str(path)))
        except (RuntimeError, OSError) as exc:
            raise CheckpointError(f"{path}: not a digits classifier state dict ({exc})") from exc
        self.model.eval()
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        try:
            self.scale = float(meta["feature_scale"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: metadata lacks a numeric 'feature_scale'") from exc
        self.sha256 = sha256_file(path)
        self.name = "digits-classifier"

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise DataError(f"digits extractor: expected [N, 1, 8, 8] images, got {tuple(x.shape)}")
        return x.float()

    def features(self, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
        return _batched(self.model.embed, self._check(x), batch_size).double() / self.scale

    def logits(self, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
        return _batched(self.model, self._check(x), batch_size).double()


@functools.cache
def digits_extractor() -> DigitsExtractor:
    """The shipped digits classifier (loaded once per process)."""
    return DigitsExtractor()


class PixelExtractor:
    """Raw values, flattened: for toy 2-D data and tiny images."""

    name = "pixels"
    sha256 = None
    preprocessing = "none (raw values in the data range, flattened)"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach().reshape(x.shape[0], -1).double()
