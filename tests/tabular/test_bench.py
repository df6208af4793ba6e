"""The impute and synth benchmark protocols: scoring on known inputs, and the quick runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gankit.bench import impute, synth


def test_missingness_mechanisms_hit_their_rates():
    x = np.random.default_rng(0).normal(size=(4000, 10))
    mcar = impute.make_missing(x, "mcar", 0.2, seed=0)
    assert (~mcar).mean() == pytest.approx(0.2, abs=0.01)
    assert mcar.any(1).all()
    mar = impute.make_missing(x, "mar", 0.2, seed=0)
    fixed = mar.all(0)
    assert fixed.sum() == 3  # 30% of the columns always observed
    assert (~mar[:, ~fixed]).mean() == pytest.approx(0.2, abs=0.02)
    # MAR: missingness of another column depends on the observed columns
    col = np.flatnonzero(~fixed)[0]
    corr = [abs(np.corrcoef(x[:, j], ~mar[:, col])[0, 1]) for j in np.flatnonzero(fixed)]
    assert max(corr) > 0.1


def test_scaled_rmse_counts_only_removed_entries():
    x = np.array([[0.0, 0.0], [10.0, 2.0]])
    observed = np.array([[True, False], [True, True]])
    imputed = x.copy()
    imputed[0, 1] = 1.0  # off by 1 on a column of range 2 -> 0.5 on the [0, 1] scale
    imputed[1, 0] = 99.0  # observed entry: ignored
    assert impute.scaled_rmse(x, imputed, observed) == pytest.approx(0.5)


def test_impute_quick_run_has_every_method():
    result = impute.run(quick=True)
    cell = result["summary"]["mcar20"]["iris"]
    assert {"mean", "knn", "mice", "missforest", "gain", "gankit", "best"} <= set(cell)
    assert cell["mean"]["rmse_mean"] > cell["mice"]["rmse_mean"]  # sanity of the scoring
    assert "gankit" in result["table"]


def _uniform_noise_shape(table: pd.DataFrame) -> float:
    """Column-shape score of noise: numbers uniform on each column's range, categories uniform."""
    from gankit.tabular.fidelity import column_shape_score
    from gankit.tabular.transform import infer_schema

    rng = np.random.default_rng(0)
    noise = pd.DataFrame(
        {
            name: rng.choice(col.unique(), len(col))
            if not pd.api.types.is_numeric_dtype(col)
            else rng.uniform(col.min(), col.max(), len(col))
            for name, col in table.items()
        }
    )
    return column_shape_score(table, noise, infer_schema(table.copy(), frame=True))


def test_synth_utility_on_real_data_and_quick_run():
    table = synth.load_table("wine")
    assert table["target"].nunique() == 3
    assert pd.api.types.is_string_dtype(table["target"])
    scores = synth.utility(table, table, seed=0)
    assert scores["rf_acc"] == 1.0  # training accuracy of a forest on its own data
    single = synth.utility(table.assign(target="class_0"), table, seed=0)
    assert single["lr_acc"] == pytest.approx((table["target"] == "class_0").mean())
    result = synth.run(quick=True)
    rows = result["summary"]["wine"]
    assert {"real (TRTR)", "gankit", "gankit TVAE"} <= set(rows)
    assert rows["gankit TVAE"]["exact_copies"][0] == 0
    # the quick model's column shapes beat a table of per-column uniform noise (0.74 on wine)
    assert rows["gankit"]["shape"][0] > _uniform_noise_shape(table) + 0.03
    assert rows["gankit"]["exact_copies"][0] == 0
    assert any("ctgan rows skipped" in n for n in result["protocol"]["notes"])
    assert len(result["runs"]["wine"]["gankit"]) == result["protocol"]["seeds"] == 1  # per seed
