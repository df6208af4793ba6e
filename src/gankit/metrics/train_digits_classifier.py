"""Train the shipped digits classifier deterministically.

Run `python -m gankit.metrics.train_digits_classifier`.

Trains on `load_digits("train")` (1,437 images) with Adam and ±1-pixel random shifts, one thread
and fixed seeds, then reports accuracy on the held-out `"test"` split (360 images) and writes
`weights/digits_classifier.safetensors`, with the RMS of the 128-d penultimate activations on the
training split in its metadata (`feature_scale`): features are divided by it, so that KID's cubic
kernel sees magnitudes like Inception's pool3 (xᵀy/d of order 1). Bit-identical weights need
the same torch build and CPU; the file's SHA-256 is what metric records cite.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gankit.metrics.features import DIGITS_WEIGHTS, DigitsClassifier

EPOCHS = 60
BATCH = 64
LR = 2e-3


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts by up to one pixel in each direction (background -1 padded in)."""
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=-1.0)
    out = torch.empty_like(x)
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=gen)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy : dy + 8, dx : dx + 8]
    return out


def accuracy(model: DigitsClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def train(seed: int = 0, epochs: int = EPOCHS) -> tuple[DigitsClassifier, dict[str, float]]:
    """Train from scratch; returns the model and its train/test accuracy."""
    from gankit.data import load_digits

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = load_digits("train")
    x_test, y_test = load_digits("test")
    model = DigitsClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[0], generator=gen)
        for s in range(0, x.shape[0], BATCH):
            idx = perm[s : s + BATCH]
            loss = torch.nn.functional.cross_entropy(model(_shift(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    return model, {
        "train_accuracy": accuracy(model, x, y),
        "test_accuracy": accuracy(model, x_test, y_test),
    }


def main(argv: list[str] | None = None) -> None:
    from safetensors.torch import save_file

    from gankit.modeldir import sha256_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DIGITS_WEIGHTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model, scores = train(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    from gankit.data import load_digits

    with torch.no_grad():
        scale = float(model.embed(load_digits("train")[0]).pow(2).mean().sqrt())
    meta = {"test_accuracy": f"{scores['test_accuracy']:.4f}", "feature_scale": repr(scale)}
    save_file(state, str(args.out), metadata=meta)
    print(json.dumps({**scores, "path": str(args.out), "sha256": sha256_file(args.out)}, indent=1))


if __name__ == "__main__":
    main()
