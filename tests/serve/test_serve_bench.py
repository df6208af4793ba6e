"""`gankit bench serve --quick`: the protocol and the scoring (never that a target is met)."""

from __future__ import annotations

import pytest

import gankit.bench.serve as bench


@pytest.mark.slow
def test_quick_protocol(monkeypatch):
    monkeypatch.setattr(bench, "QUICK_SECONDS", 0.5)
    monkeypatch.setattr(bench, "QUICK_IMPUTER", {"n_steps": 5, "ridge": 1e-3})
    result = bench.run(quick=True)
    rows = {(s["server"], s["scenario"]): s for s in result["scenarios"]}
    assert set(rows) == {
        ("torch (default: micro-batch auto)", "generate n=1"),
        ("torch (default: micro-batch auto)", "generate n=64"),
        ("torch (default: micro-batch auto)", "impute 1 row"),
        ("onnxruntime", "generate n=1"),
    }
    for row in rows.values():
        assert row["errors"] == 0 and row["requests"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert (
            abs(row["requests_per_s"] - row["requests"] / row["seconds"])
            <= 0.02 * row["requests_per_s"]
        )
        assert row["overhead_p50_ms"] == round(row["p50_ms"] - row["forward_ms"], 3)
        assert row["server_peak_rss_mb"] > 50
    for server in (
        "torch (default: micro-batch auto)",
        "onnxruntime",
    ):  # every request left exactly one audit line
        served = [r for r in rows.values() if r["server"] == server]
        assert served[0]["audit_lines_total"] == sum(r["requests"] for r in served)
    runtime = {r["batch"]: r for r in result["runtime"]}
    assert set(runtime) == {1, 64}
    assert runtime[1]["ort_speedup"] == round(runtime[1]["eager_ms"] / runtime[1]["ort_ms"], 2)
    assert runtime[64]["eager_ms"] > runtime[1]["eager_ms"]
    assert (
        rows[("torch (default: micro-batch auto)", "generate n=1")]["forward_ms"]
        == runtime[1]["eager_ms"]
    )
    assert "| torch (default" in result["table"] and "ORT speed-up" in result["table"]
    assert result["reference"][0]["source"]
