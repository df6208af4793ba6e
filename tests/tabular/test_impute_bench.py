"""`gankit bench impute` additions of issue 15: MNAR, the nonlinear tables, the ablation."""

from __future__ import annotations

import numpy as np
import pytest

from gankit.bench import impute
from gankit.bench.impute_tables import TABLES, load_table
from gankit.errors import ConfigError
from gankit.tabular import GANImputer


def test_mnar_self_masking_hides_large_values():
    x = np.random.default_rng(0).normal(size=(4000, 5))
    observed = impute.make_missing(x, "mnar", 0.3, seed=0)
    assert (~observed).mean() == pytest.approx(0.3, abs=0.02)
    for j in range(5):  # missing entries are larger on average than observed ones
        assert x[~observed[:, j], j].mean() > x[observed[:, j], j].mean() + 0.5


def test_tables_are_complete_seeded_and_nonlinear():
    for name in TABLES:
        x = load_table(name, 0)
        assert x.ndim == 2 and np.isfinite(x).all() and len(x) >= 150
    assert load_table("digits").shape == (1797, 61)
    assert not np.array_equal(load_table("sine", 0), load_table("sine", 1))
    sine = load_table("sine", 0)  # x2 = sin(2 x1) + noise: residual sd 0.1
    assert np.std(sine[:, 1] - np.sin(2 * sine[:, 0])) == pytest.approx(0.1, abs=0.01)
    products = load_table("products", 0)
    assert abs(np.corrcoef(products[:, 0], products[:, 4])[0, 1]) < 0.1  # not linear


def test_network_stage_ablation_uses_column_means():
    x = load_table("sine", 0)[:200]
    observed = impute.make_missing(x, "mcar", 0.2, seed=0)
    holed = np.where(observed, x, np.nan)
    imp = GANImputer(n_steps=0, stages="network", random_state=0).fit(holed)
    out = imp.transform(holed)
    means = np.nanmean(holed, axis=0)
    rows, cols = np.nonzero(~observed)
    assert np.allclose(out[rows, cols], means[cols], atol=1e-5)  # float32 fill
    with pytest.raises(ConfigError, match="stages"):
        GANImputer(stages="gan").fit(holed)


def test_verbose_fit_reports_its_stages(capsys):
    x = load_table("iris")
    holed = np.where(impute.make_missing(x, "mcar", 0.2, seed=0), x, np.nan)
    GANImputer(n_steps=0, verbose=True, random_state=0).fit(holed)
    err = capsys.readouterr().err
    assert "fitting 150 x 4" in err and "mixture selection done" in err
    assert "mixture EM" in err and "150 rows" in err
