"""The metrics benchmark's quick mode: protocol and scoring, never the targets."""

from __future__ import annotations

import json
from pathlib import Path

from gankit.bench import BENCHMARKS, run_benchmark


def test_quick_metrics_bench_writes_json(tmp_path: Path) -> None:
    assert BENCHMARKS["metrics"] == "gankit.bench.metrics"
    result = run_benchmark("metrics", quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    best = saved["best"]
    assert saved["protocol"]["n"] == 2000 and saved["protocol"]["d"] == 256
    assert best["fd"] > 0 and best["fd_seconds"] > 0
    assert best["fd_relative_difference"] <= 1e-10  # same number as torchmetrics
    assert 0 <= best["pr"]["precision"] <= 1 and 0 <= best["pr"]["recall"] <= 1
    assert "speed-up" in result["table"]
