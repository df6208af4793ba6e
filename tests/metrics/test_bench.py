"""The metrics benchmark's quick mode: protocol and scoring, never the targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gankit.bench import run_benchmark
from gankit.bench.metrics import _features


def test_quick_metrics_bench_scores_match_reference_implementations(tmp_path: Path) -> None:
    from prdc import compute_prdc
    from scipy.linalg import sqrtm

    result = run_benchmark("metrics", quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    best = saved["best"]
    assert saved["protocol"]["n"] == 2000 and saved["protocol"]["d"] == 256
    # the protocol's features, scored by independent implementations: FD by scipy's sqrtm
    # (not our eigh path), precision/recall by the prdc package (Naeem et al.'s code)
    real, fake = (_features(2000, 256, seed, shift).numpy() for seed, shift in ((0, 0), (1, 0.1)))
    c1, c2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    fd = ((real.mean(0) - fake.mean(0)) ** 2).sum() + np.trace(c1 + c2)
    fd -= 2 * np.trace(sqrtm(c1 @ c2).real)
    assert best["fd"] == pytest.approx(fd, rel=1e-6)
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=3)
    assert best["pr"]["precision"] == pytest.approx(ref["precision"], abs=1e-12)
    assert best["pr"]["recall"] == pytest.approx(ref["recall"], abs=1e-12)
    assert best["fd_relative_difference"] <= 1e-10  # same number as torchmetrics
    assert "speed-up" in result["table"]
