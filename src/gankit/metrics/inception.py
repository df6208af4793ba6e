"""Inception-v3 as used for FID (the TF `inception-2015-12-05` graph), written for PyTorch.

The architecture follows Szegedy et al. (2016, "Rethinking the Inception Architecture") with the
changes of the 2015-12-05 TensorFlow graph that FID uses: batch-norm ε = 0.001, 1,008 output
classes, average pools in the A/C/E blocks that exclude padding from the mean, and a max pool in
the last E block's pooling branch. Module names follow the `pt_inception-2015-12-05` state dict
(`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch5x5_1.bn.running_mean`, …, `fc.weight`), so that
file loads directly.

Weights are never bundled or downloaded implicitly: pass a path to `InceptionExtractor`, or call
`download_inception_weights(dest)` yourself (the file is checked against its SHA-256). `.pth`
files are read with `torch.load(weights_only=True)` (no arbitrary unpickling); `.safetensors`
also work.

Default preprocessing ("tf1-bilinear-299", as torch-fidelity and the original TF code): images
in [-1, 1] are quantised to uint8, resized to 299×299 with TensorFlow 1's bilinear rule
(align_corners=False, no half-pixel centres), then mapped to (x − 128) / 128; grey images are
repeated to three channels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import CheckpointError, DataError
from gankit.modeldir import sha256_file

WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
# The SHA-256 of that file; its first 8 hex digits are the "6726825d" in the file name
# (torch.hub's naming convention).
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
PREPROCESSING = "tf1-bilinear-299: uint8 quantise, TF1 bilinear resize to 299x299, (x-128)/128"


class BasicConv2d(nn.Module):
    """Convolution without bias → batch norm (ε = 0.001) → ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], **kw: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, bias=False, **kw)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35×35 block: 1×1, 5×5, double 3×3 and pooled branches."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 → 17."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (1×7 then 7×1)."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        row, col = {"padding": (0, 3)}, {"padding": (3, 0)}
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), **row)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 → 8."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs; `max_pool` selects the last block's pooling."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The FID network: `forward` returns (pool3 features [N, 2048], logits [N, 1008])."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """2048-d features of preprocessed [N, 3, 299, 299] input."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.pool3(x)
        return f, self.fc(f)


def tf1_resize_bilinear(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """TensorFlow 1 `resize_bilinear(align_corners=False)`: source = dest · (in / out), no
    half-pixel offset, neighbours clamped at the last row/column."""

    def axis(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(size, dtype=torch.float64) * (n_in / size)
        lo = src.floor().long().clamp_max(n_in - 1)
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, (src - lo).to(x.dtype)

    y0, y1, wy = axis(x.shape[2])
    x0, x1, wx = axis(x.shape[3])
    top = x[:, :, y0, :] * (1 - wy)[:, None] + x[:, :, y1, :] * wy[:, None]
    return top[:, :, :, x0] * (1 - wx) + top[:, :, :, x1] * wx


def preprocess_tf1(images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] (C = 1 or 3) → Inception input [N, 3, 299, 299]."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"Inception input: expected [N, 1 or 3, H, W], got {tuple(images.shape)}")
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round()
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return (tf1_resize_bilinear(x) - 128.0) / 128.0


def load_inception_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from `.safetensors` or a `.pth` file (weights_only; no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: Inception weights not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable Inception weights ({exc})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def build_inception(path: str | Path) -> FIDInceptionV3:
    """The network with the weights from `path`; key or shape mismatches raise CheckpointError."""
    model = FIDInceptionV3()
    state = load_inception_state(path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit FIDInceptionV3 ({exc})") from exc
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: not a pt_inception-2015-12-05 state dict (missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]})"
        )
    return model.eval()


def download_inception_weights(
    dest: str | Path, url: str = WEIGHTS_URL, sha256: str = WEIGHTS_SHA256
) -> Path:
    """Fetch the FID Inception weights to `dest` (only when called), refusing a wrong SHA-256."""
    from gankit.data.download import download

    return download(url, dest, f"sha256:{sha256}")


class InceptionExtractor:
    """pool3 features (2048-d) and bias-free logits (as the reference IS code) of Inception-v3."""

    name = "inception-v3-fid"
    preprocessing = PREPROCESSING

    def __init__(
        self,
        weights: str | Path,
        preprocess: Callable[[torch.Tensor], torch.Tensor] = preprocess_tf1,
        batch_size: int = 32,
    ) -> None:
        self.model = build_inception(weights)
        self.sha256 = sha256_file(weights)
        self.preprocess = preprocess
        self.batch_size = batch_size
        if preprocess is not preprocess_tf1:
            self.preprocessing = getattr(preprocess, "__name__", "custom")

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pool3 features [N, 2048] and bias-free logits [N, 1008] in one pass (float64)."""
        feats = []
        with torch.no_grad():
            for s in range(0, images.shape[0], self.batch_size):
                feats.append(self.model.pool3(self.preprocess(images[s : s + self.batch_size])))
        f = torch.cat(feats)
        return f.double(), (f @ self.model.fc.weight.T).double()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[1]
