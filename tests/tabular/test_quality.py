"""The quality report: shape and pair-trend scores against SDMetrics (test-only oracle, same
tables, tolerance 1e-9: the definitions are the same), detection and utility on tables whose
answer is known, and `gankit synth report` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
from sdmetrics.single_column import KSComplement, TVComplement

from gankit.cli import main
from gankit.tabular import TabularGAN
from gankit.tabular.quality import column_shapes, detection, pair_trends, utility
from gankit.tabular.transform import infer_schema

TOL = 1e-9


def table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """x ~ N(shift, 1), y = 2x + noise, an integer count, city (b for large x, else a or c by
    the sign of the noise: a function of x and y)."""
    rng = np.random.default_rng(seed)
    x, noise = rng.normal(shift, 1, n), rng.normal(0, 1 + shift, n)
    city = np.where(x > 0.5, "b", np.where(noise > 0, "a", "c"))
    return pd.DataFrame({"x": x, "y": 2 * x + noise, "k": rng.poisson(3, n), "city": city})


@pytest.fixture(scope="module")
def tables():
    real, synth = table(300, 0), table(250, 1, shift=0.4)
    schema = infer_schema(real, True, categorical=["city"], integer=["k"])
    return real, synth, schema


def test_shapes_and_pair_trends_match_sdmetrics(tables):
    real, synth, schema = tables
    for entry in column_shapes(real, synth, schema):
        oracle = KSComplement if entry["metric"] == "KSComplement" else TVComplement
        expected = oracle.compute(real[entry["column"]], synth[entry["column"]])
        assert entry["score"] == pytest.approx(expected, abs=TOL), entry
    pairs = pair_trends(real, synth, schema)
    assert len(pairs) == 6 and all(0 <= p["score"] <= 1 for p in pairs)
    numeric = ["x", "y", "k"]
    for entry in pairs:
        cols = entry["columns"]
        if entry["metric"] == "CorrelationSimilarity":
            expected = CorrelationSimilarity.compute(real[cols], synth[cols])
        else:
            binned = [c for c in cols if c in numeric]
            expected = ContingencySimilarity.compute(
                real[cols], synth[cols], continuous_column_names=binned or None
            )
        assert entry["score"] == pytest.approx(expected, abs=TOL), entry
    # the shifted table really scores lower than a fresh draw of the real distribution
    same = np.mean([e["score"] for e in column_shapes(real, table(250, 2), schema)])
    assert np.mean([e["score"] for e in column_shapes(real, synth, schema)]) < same - 0.03


def test_detection_and_utility_on_known_answers(tables):
    real, _, schema = tables
    twin = detection(real, table(300, 3), schema, trees=10)  # the same distribution: cannot tell
    assert max(twin["roc_auc"].values()) < 0.62 and twin["score"] > 0.75
    far = detection(real, table(300, 3, shift=3.0), schema, trees=10)  # x shifted by 3 sd
    assert min(far["roc_auc"].values()) > 0.95 and far["score"] < 0.1
    good = utility(real, table(300, 4), schema, "city", trees=10)
    assert good["task"] == "classification" and good["trtr"]["accuracy"] > 0.8
    assert good["tstr"]["accuracy"] > 0.8 and 0.85 < good["tstr_over_trtr"] < 1.15
    noise = table(300, 4).assign(city=np.random.default_rng(5).choice(["a", "b", "c"], 300))
    assert utility(real, noise, schema, "city", trees=10)["tstr_over_trtr"] < 0.6
    assert utility(real, table(300, 4), schema, "y", trees=10)["tstr"]["r2"] > 0.5


def test_synth_report_command(tmp_path: Path, capsys):
    real = table(120, 6)
    model = TabularGAN(n_steps=2, hidden=(16,), z_dim=8, batch_size=40, random_state=0)
    model.fit(real, discrete_columns=["city"]).save(tmp_path / "model")
    real.to_csv(tmp_path / "real.csv", index=False)
    table(60, 7).to_csv(tmp_path / "holdout.csv", index=False)
    out = tmp_path / "report.html"
    argv = ["synth", "report", str(tmp_path / "model"), "--real", str(tmp_path / "real.csv")]
    argv += ["--out", str(out), "--holdout", str(tmp_path / "holdout.csv"), "--target", "city"]
    argv += ["--trees", "10"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    report = json.loads(out.with_suffix(".json").read_text())
    assert set(report["scores"]) == {"column_shapes", "pair_trends", "overall", "detection"}
    assert summary["column_shapes"] == report["scores"]["column_shapes"]
    assert [c["column"] for c in report["column_shapes"]] == ["x", "y", "k", "city"]
    assert report["rows"] == {"real": 120, "synthetic": 120}
    assert report["utility"]["target"] == "city" and "tstr" in report["utility"]
    assert report["privacy"]["dcr"]["exact_copies"] >= 0 and "attacks" in report["privacy"]
    page = out.read_text()
    assert page.count("src='data:image/png;base64,") == 4 and "Pair trends" in page
    assert (
        main(
            [
                "synth",
                "report",
                str(tmp_path / "model"),
                "--real",
                str(tmp_path / "holdout.csv"),
                "--out",
                str(out),
                "--target",
                "nope",
            ]
        )
        == 2
    )
